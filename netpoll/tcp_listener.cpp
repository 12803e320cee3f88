// weft::net::tcp_listener: bind, listen, accept with back-off when descriptors run out.
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "io_wait.hpp"
#include "runtime/scheduler.hpp"
#include "weft/net.hpp"
#include "weft/runtime.hpp"

namespace weft::net {
namespace {

std::error_code errno_code(int e = errno) noexcept {
  return std::error_code(e, std::system_category());
}

// Go's net/http back-off for temporary accept errors: 5 ms doubling to 1 s.
constexpr std::int64_t backoff_first_ns = 5'000'000;
constexpr std::int64_t backoff_max_ns = 1'000'000'000;

bool out_of_resources(int e) noexcept {
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

}  // namespace

tcp_listener::tcp_listener(tcp_listener&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      pd_(std::exchange(o.pd_, nullptr)),
      deadline_(o.deadline_.load()),
      backoffs_(o.backoffs_.load()) {}

tcp_listener& tcp_listener::operator=(tcp_listener&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    pd_ = std::exchange(o.pd_, nullptr);
    deadline_.store(o.deadline_.load());
    backoffs_.store(o.backoffs_.load());
  }
  return *this;
}

tcp_listener::~tcp_listener() {
  reset();
}

void tcp_listener::reset() noexcept {
  if (!pd_) return;
  auto& np = detail::netpoller::instance();
  np.close(pd_);
  np.recycle(pd_);
  pd_ = nullptr;
  fd_ = -1;
}

void tcp_listener::close() noexcept {
  if (pd_) detail::netpoller::instance().close(pd_);
}

tcp_listener tcp_listener::bind(const address& addr, const listen_options& opts,
                                std::error_code& ec) {
  ec.clear();
  const int fd = ::socket(addr.data()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ec = errno_code();
    return {};
  }
  const int one = 1;
  if ((opts.reuse_address && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) ||
      (opts.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      ::bind(fd, addr.data(), addr.size()) != 0 || ::listen(fd, opts.backlog) != 0) {
    ec = errno_code();
    ::close(fd);
    return {};
  }
  tcp_listener l;
  try {
    l.pd_ = detail::netpoller::instance().open(fd);
  } catch (const std::system_error& e) {
    ::close(fd);
    ec = e.code();
    return {};
  }
  l.fd_ = fd;
  return l;
}

tcp_listener tcp_listener::bind(std::string_view addr, const listen_options& opts) {
  std::error_code ec;
  const address a = address::parse(addr);
  tcp_listener l = bind(a, opts, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::tcp_listener::bind to " + a.to_string());
  return l;
}

tcp_stream tcp_listener::accept(std::error_code& ec) {
  ec.clear();
  detail::io_operation op(pd_);
  if (!op) {
    ec = detail::closed_error();
    return {};
  }
  std::int64_t backoff = backoff_first_ns;
  for (;;) {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      try {
        tcp_stream s = tcp_stream::adopt(fd);
        detail::coop_point();
        return s;
      } catch (const std::system_error& e) {
        ec = e.code();
        return {};
      }
    }
    const int e = errno;
    if (e == EINTR || e == ECONNABORTED) continue;
    const std::int64_t deadline = deadline_.load(std::memory_order_relaxed);
    if (out_of_resources(e)) {
      // The pending connection stays queued; no new edge may come, so retry after a pause.
      backoffs_.fetch_add(1, std::memory_order_relaxed);
      const std::int64_t now = detail::now_ns();
      if (deadline <= now) {
        ec = std::make_error_code(std::errc::timed_out);
        return {};
      }
      try {
        detail::sleep_until_ns(std::min(now + backoff, deadline));
      } catch (const weft::cancelled&) {
        if (detail::unwinding_for_shutdown()) throw;
        ec = std::make_error_code(std::errc::operation_canceled);
        return {};
      }
      backoff = std::min(backoff * 2, backoff_max_ns);
      if (pd_->closing()) {
        ec = detail::closed_error();
        return {};
      }
      continue;
    }
    if (e != EAGAIN) {
      ec = errno_code(e);
      return {};
    }
    const detail::io_wait_result r = detail::wait_io(pd_, detail::io_direction::read, deadline);
    if (r != detail::io_wait_result::ready) {
      ec = detail::wait_error(r);
      return {};
    }
  }
}

tcp_stream tcp_listener::accept() {
  std::error_code ec;
  tcp_stream s = accept(ec);
  if (ec) detail::throw_io_error(ec, "weft::net::tcp_listener::accept");
  return s;
}

void tcp_listener::set_deadline(clock::time_point t) noexcept {
  deadline_.store(t == no_deadline ? detail::no_deadline : detail::to_deadline(t),
                  std::memory_order_relaxed);
  if (pd_) detail::netpoller::instance().kick(pd_);
}

address tcp_listener::local_address() const {
  sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (!pd_ || getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    throw std::system_error(pd_ ? errno_code() : detail::closed_error(),
                            "weft::net::tcp_listener::local_address");
  return address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa), len);
}

std::uint16_t tcp_listener::port() const {
  return local_address().port();
}

}  // namespace weft::net
