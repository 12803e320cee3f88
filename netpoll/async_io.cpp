// The async_ forms of weft's I/O, for stackless tasks (weft/task.hpp): the same loops as
// pollable.cpp, tcp_listener.cpp and tcp_stream.cpp, waiting through io_ready_awaiter (the
// netpoller's wait cut at its park) instead of parking a stack.
//
// Invariants: as for the blocking forms. Each coroutine holds an io_operation in its frame for
// as long as it may touch the descriptor, so the fd is not closed under a suspended task; a task
// whose budget is spent yields after a call that succeeded, as a channel operation does.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "io_wait.hpp"
#include "resolve.hpp"
#include "ring.hpp"
#include "runtime/scheduler.hpp"
#include "weft/io.hpp"
#include "weft/net.hpp"
#include "weft/select.hpp"
#include "weft/task.hpp"

namespace weft::detail {
namespace {

std::error_code errno_code(int e = errno) noexcept {
  return std::error_code(e, std::system_category());
}

constexpr std::int64_t backoff_first_ns = 5'000'000;
constexpr std::int64_t backoff_max_ns = 1'000'000'000;

bool out_of_resources(int e) noexcept {
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

// After a call that did not wait: let others run if this task has spent its budget.
struct yield_if_due : yield_awaiter {
  bool await_ready() const noexcept { return !task_yield_due(); }
};

}  // namespace

task<ssize_t> pollable::async_perform(bool write, ssize_t (*op)(int, void*), void* ctx,
                                      std::error_code& ec, bool wait_first) {
  ec.clear();
  io_operation guard(pd_);
  if (!guard) {
    ec = closed_error();
    co_return -1;
  }
  const io_direction dir = write ? io_direction::write : io_direction::read;
  for (;; wait_first = false) {
    const ssize_t n = wait_first ? (errno = EAGAIN, -1) : op(fd_, ctx);
    if (n >= 0) {
      co_await yield_if_due{};
      co_return n;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      ec = errno_code();
      co_return -1;
    }
    const std::int64_t deadline =
        (write ? write_deadline_ : read_deadline_).load(std::memory_order_relaxed);
    const io_wait_result r = co_await io_ready_awaiter(pd_, dir, deadline);
    if (r != io_wait_result::ready) {
      ec = wait_error(r);
      co_return -1;
    }
  }
}

task<void> pollable::async_wait_ready(bool write, std::int64_t deadline, std::error_code& ec) {
  ec.clear();
  io_operation guard(pd_);
  if (!guard) {
    ec = closed_error();
    co_return;
  }
  const io_wait_result r =
      co_await io_ready_awaiter(pd_, write ? io_direction::write : io_direction::read, deadline);
  if (r != io_wait_result::ready) ec = wait_error(r);
}

task<int> pollable::async_accept_raw(std::error_code& ec, std::atomic<std::uint64_t>& backoffs) {
  ec.clear();
  io_operation guard(pd_);
  if (!guard) {
    ec = closed_error();
    co_return -1;
  }
  std::int64_t backoff = backoff_first_ns;
  for (;;) {
    int fd = take_accepted(pd_);  // taken by a green thread's multishot accept (ring.hpp)
    if (fd < 0) fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      co_await yield_if_due{};
      co_return fd;
    }
    const int e = errno;
    if (e == EINTR || e == ECONNABORTED) continue;
    const std::int64_t deadline = read_deadline_.load(std::memory_order_relaxed);
    if (out_of_resources(e)) {
      backoffs.fetch_add(1, std::memory_order_relaxed);  // see accept_raw
      const std::int64_t now = now_ns();
      if (deadline <= now) {
        ec = std::make_error_code(std::errc::timed_out);
        co_return -1;
      }
      bool cancelled = false;
      try {
        co_await sleep_awaiter(std::min(now + backoff, deadline));
      } catch (const weft::cancelled&) {
        if (unwinding_for_shutdown()) throw;
        cancelled = true;
      }
      if (cancelled) {
        ec = std::make_error_code(std::errc::operation_canceled);
        co_return -1;
      }
      backoff = std::min(backoff * 2, backoff_max_ns);
      if (pd_->closing()) {
        ec = closed_error();
        co_return -1;
      }
      continue;
    }
    if (e != EAGAIN) {
      ec = errno_code(e);
      co_return -1;
    }
    const io_wait_result r = co_await io_ready_awaiter(pd_, io_direction::read, deadline);
    if (r != io_wait_result::ready) {
      ec = wait_error(r);
      co_return -1;
    }
  }
}

task<void> pollable::async_connect_raw(const sockaddr* addr, socklen_t len, std::int64_t deadline,
                                       std::error_code& ec) {
  ec.clear();
  io_operation guard(pd_);
  if (!guard) {
    ec = closed_error();
    co_return;
  }
  if (::connect(fd_, addr, len) == 0) co_return;
  if (errno != EINPROGRESS && errno != EINTR) {
    ec = errno_code();
    co_return;
  }
  for (;;) {  // see connect_raw
    const io_wait_result r = co_await io_ready_awaiter(pd_, io_direction::write, deadline);
    if (r != io_wait_result::ready) {
      ec = wait_error(r);
      co_return;
    }
    if (connect_settled(fd_, ec)) co_return;
  }
}

}  // namespace weft::detail

namespace weft::io {

task<std::size_t> stream::read_task(std::span<std::byte> buffer, std::error_code* ec_out) {
  std::error_code ec;
  std::size_t got = 0;
  if (usable(ec) && !buffer.empty()) {
    const bool wait_first = drained_ && !pd_->hangup.load(std::memory_order_relaxed);
    drained_ = false;
    auto op = [](int fd, void* b) -> ssize_t {
      auto* span = static_cast<std::span<std::byte>*>(b);
      return ::read(fd, span->data(), span->size());
    };
    const ssize_t n = co_await async_perform(false, op, &buffer, ec, wait_first);
    if (n > 0) {
      got = static_cast<std::size_t>(n);
      drained_ = got < buffer.size();
    }
  }
  if (ec_out)
    *ec_out = ec;
  else if (ec)
    detail::throw_io_error(ec, "weft::io::stream::async_read");
  co_return got;
}

task<std::size_t> stream::write_task(std::span<const std::byte> data, std::error_code* ec_out) {
  std::error_code ec;
  std::size_t done = 0;
  struct progress {
    stream* self;
    std::span<const std::byte> data;
    std::size_t* done;
  } ctx{this, data, &done};
  auto op = [](int, void* c) -> ssize_t {
    auto* p = static_cast<progress*>(c);
    return p->self->write_some(p->data.data() + *p->done, p->data.size() - *p->done);
  };
  while (done < data.size()) {
    const ssize_t n = co_await async_perform(true, op, &ctx, ec, false);
    if (n < 0) break;
    done += static_cast<std::size_t>(n);
  }
  if (data.empty()) usable(ec);
  if (ec_out)
    *ec_out = ec;
  else if (ec)
    detail::throw_io_error(ec, "weft::io::stream::async_write_all");
  co_return done;
}

task<void> fd_waiter::async_wait_readable(clock::time_point deadline, std::error_code& ec) {
  return async_wait_ready(
      false, deadline == no_deadline ? detail::no_deadline : detail::to_deadline(deadline), ec);
}

task<void> fd_waiter::async_wait_writable(clock::time_point deadline, std::error_code& ec) {
  return async_wait_ready(
      true, deadline == no_deadline ? detail::no_deadline : detail::to_deadline(deadline), ec);
}

task<void> fd_waiter::async_wait_readable(clock::time_point deadline) {
  std::error_code ec;
  co_await async_wait_readable(deadline, ec);
  if (ec) detail::throw_io_error(ec, "weft::io::fd_waiter::async_wait_readable");
}

task<void> fd_waiter::async_wait_writable(clock::time_point deadline) {
  std::error_code ec;
  co_await async_wait_writable(deadline, ec);
  if (ec) detail::throw_io_error(ec, "weft::io::fd_waiter::async_wait_writable");
}

}  // namespace weft::io

namespace weft::net {
namespace {

std::int64_t deadline_after(std::chrono::nanoseconds timeout) noexcept {
  const std::int64_t now = detail::now_ns();
  if (timeout.count() <= 0) return detail::no_deadline;
  return timeout.count() >= detail::no_deadline - now ? detail::no_deadline : now + timeout.count();
}

// resolve_before (resolve.cpp) for a task: the lookup runs in a green thread of its own.
task<std::vector<address>> resolve_task(std::string host, std::uint16_t port, std::int64_t deadline,
                                        std::error_code& ec) {
  ec.clear();
  address numeric;
  if (detail_resolve::numeric_address(host, port, false, numeric)) co_return {numeric};
  auto job = detail_resolve::start_lookup(host, port);
  const std::int64_t left = deadline - detail::now_ns();
  bool finished = false, cancelled = false;
  try {
    if (left > 0)
      co_await weft::async_select(
          weft::on_recv(job->done, [&](std::optional<bool>) { finished = true; }),
          weft::on_timeout(std::chrono::nanoseconds(left), [] {}));
  } catch (const weft::cancelled&) {
    if (detail::unwinding_for_shutdown()) throw;
    cancelled = true;
  }
  if (cancelled || !finished) {
    ec = std::make_error_code(cancelled ? std::errc::operation_canceled : std::errc::timed_out);
    co_return {};
  }
  ec = job->ec;
  co_return std::move(job->found);
}

}  // namespace

task<std::vector<address>> async_resolve(std::string host, std::uint16_t port,
                                         std::chrono::nanoseconds timeout, std::error_code& ec) {
  return resolve_task(std::move(host), port, deadline_after(timeout), ec);
}

task<std::vector<address>> async_resolve(std::string host, std::uint16_t port,
                                         std::chrono::nanoseconds timeout) {
  std::error_code ec;
  std::vector<address> found = co_await resolve_task(host, port, deadline_after(timeout), ec);
  if (ec) detail::throw_io_error(ec, "weft::net::async_resolve: " + host);
  co_return found;
}

task<tcp_stream> tcp_listener::accept_task(std::error_code* ec_out) {
  std::error_code ec;
  tcp_stream s;
  const int fd = co_await async_accept_raw(ec, backoffs_);
  if (fd >= 0) {
    try {
      s = tcp_stream::adopt(fd);
    } catch (const std::system_error& e) {
      ec = e.code();
    }
  }
  if (ec_out)
    *ec_out = ec;
  else if (ec)
    detail::throw_io_error(ec, "weft::net::tcp_listener::async_accept");
  co_return s;
}

task<tcp_stream> tcp_stream::async_connect_before(address addr, std::int64_t deadline,
                                                  std::error_code& ec) {
  ec.clear();
  const int fd = ::socket(addr.data()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ec = std::error_code(errno, std::system_category());
    co_return tcp_stream{};
  }
  tcp_stream s;
  s.attach_socket(fd, ec);
  if (ec) co_return tcp_stream{};
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  co_await s.async_connect_raw(addr.data(), addr.size(), deadline, ec);
  if (ec) co_return tcp_stream{};
  co_return s;
}

task<tcp_stream> tcp_stream::async_connect(address addr, std::chrono::nanoseconds timeout,
                                           std::error_code& ec) {
  return async_connect_before(addr, deadline_after(timeout), ec);
}

task<tcp_stream> tcp_stream::async_connect(address addr, std::chrono::nanoseconds timeout) {
  std::error_code ec;
  tcp_stream s = co_await async_connect_before(addr, deadline_after(timeout), ec);
  if (ec) detail::throw_io_error(ec, "weft::net::tcp_stream::async_connect to " + addr.to_string());
  co_return s;
}

task<tcp_stream> tcp_stream::async_connect_host(std::string addr, std::chrono::nanoseconds timeout,
                                                std::error_code* ec_out) {
  const std::int64_t deadline = deadline_after(timeout);
  std::error_code ec;
  std::vector<address> candidates;
  std::string_view host;
  std::uint16_t port = 0;
  if (!detail_resolve::without_lookup(addr, candidates, host, port, ec))
    candidates = co_await resolve_task(std::string(host), port, deadline, ec);
  tcp_stream s;
  if (!ec) {
    std::error_code first;  // Go's dialer, as connect does
    for (const address& a : candidates) {
      s = co_await async_connect_before(a, deadline, ec);
      if (!ec) break;
      if (ec == std::errc::operation_canceled || ec == std::errc::timed_out) {
        first.clear();
        break;
      }
      if (!first) first = ec;
    }
    if (ec && first) ec = first;
  }
  if (ec_out)
    *ec_out = ec;
  else if (ec)
    detail::throw_io_error(ec, "weft::net::tcp_stream::async_connect to " + addr);
  co_return s;
}

task<tcp_stream> tcp_stream::async_connect(std::string addr, std::chrono::nanoseconds timeout,
                                           std::error_code& ec) {
  return async_connect_host(std::move(addr), timeout, &ec);
}

task<tcp_stream> tcp_stream::async_connect(std::string addr, std::chrono::nanoseconds timeout) {
  return async_connect_host(std::move(addr), timeout, nullptr);
}

}  // namespace weft::net
