// detail::pollable (registration, deadlines, the retry-after-readiness loop, accept with
// back-off), and on it weft::io::stream, io::pipe and io::fd_waiter.
//
// Invariants: an object's poll descriptor outlives every operation that began on it (each holds
// an io_operation), and the fd is closed (or, borrowed, unregistered) only when the last one
// ends after close(); the record is reused only by reset(), which the owner calls when no
// operation can start any more (move-assignment or destruction).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "io_wait.hpp"
#include "ring.hpp"
#include "runtime/scheduler.hpp"
#include "weft/io.hpp"
#include "weft/runtime.hpp"

namespace weft::detail {
namespace {

std::error_code errno_code(int e = errno) noexcept {
  return std::error_code(e, std::system_category());
}

std::int64_t to_ns(pollable::clock::time_point t) noexcept {
  return t == pollable::clock::time_point::max() ? no_deadline : to_deadline(t);
}

constexpr std::int64_t backoff_first_ns = 5'000'000;
constexpr std::int64_t backoff_max_ns = 1'000'000'000;

bool out_of_resources(int e) noexcept {
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

}  // namespace

void throw_io_error(const std::error_code& ec, const char* what) {
  throw_io_error(ec, std::string(what));
}

pollable::pollable(pollable&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      pd_(std::exchange(o.pd_, nullptr)),
      read_deadline_(o.read_deadline_.load()),
      write_deadline_(o.write_deadline_.load()) {}

pollable& pollable::operator=(pollable&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    pd_ = std::exchange(o.pd_, nullptr);
    read_deadline_.store(o.read_deadline_.load());
    write_deadline_.store(o.write_deadline_.load());
  }
  return *this;
}

void pollable::attach(int fd, bool owned, std::error_code& ec) noexcept {
  ec.clear();
  try {
    pd_ = netpoller::instance().open(fd, owned);
    fd_ = fd;
  } catch (const std::system_error& e) {
    ec = e.code();
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  if (ec && owned) ::close(fd);
}

void pollable::attach(int fd, bool owned, const char* what) {
  std::error_code ec;
  attach(fd, owned, ec);
  if (ec) throw std::system_error(ec, what);
}

void pollable::reset() noexcept {
  if (!pd_) return;
  auto& np = netpoller::instance();
  np.close(pd_);
  np.recycle(pd_);
  pd_ = nullptr;
  fd_ = -1;
}

void pollable::close() noexcept {
  // Marks it closed (waking a blocked reader or writer); the record is reused only when the
  // object goes away, so a green thread still inside a call never sees a recycled one.
  if (pd_) netpoller::instance().close(pd_);
}

void pollable::set_read_deadline(clock::time_point t) noexcept {
  read_deadline_.store(to_ns(t), std::memory_order_relaxed);
  if (pd_) netpoller::instance().kick(pd_);
}

void pollable::set_write_deadline(clock::time_point t) noexcept {
  write_deadline_.store(to_ns(t), std::memory_order_relaxed);
  if (pd_) netpoller::instance().kick(pd_);
}

void pollable::set_read_timeout(std::chrono::nanoseconds d) noexcept {
  set_read_deadline(clock::now() + d);
}

void pollable::set_write_timeout(std::chrono::nanoseconds d) noexcept {
  set_write_deadline(clock::now() + d);
}

bool pollable::usable(std::error_code& ec) const noexcept {
  if (pd_ && !pd_->closing()) return true;
  ec = closed_error();
  return false;
}

ssize_t pollable::perform_raw(bool write, ssize_t (*op)(int, void*), void* ctx, std::error_code& ec,
                              bool wait_first, ring_target* target) {
  ec.clear();
  io_operation guard(pd_);
  if (!guard) {
    ec = closed_error();
    return -1;
  }
  const io_direction dir = write ? io_direction::write : io_direction::read;
  for (;; wait_first = false) {
    const ssize_t n = wait_first ? (errno = EAGAIN, -1) : op(fd_, ctx);
    if (n >= 0) {
      coop_point();
      return n;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      ec = errno_code();
      return -1;
    }
    const std::int64_t deadline =
        (write ? write_deadline_ : read_deadline_).load(std::memory_order_relaxed);
    if (worker_ring* ring = target ? usable_ring() : nullptr) {
      // The call itself waits, on the ring, and wakes with its result.
      const ring_read_result r = ring_socket_io(*ring, pd_, *target, deadline);
      if (r.n >= 0) {
        target->on_ring = true;
        coop_point();
        return r.n;
      }
      if (r.n == -EAGAIN || r.n == -EINTR) continue;  // read it plainly
      if (r.n != -ECANCELED) {
        ec = errno_code(static_cast<int>(-r.n));
        return -1;
      }
      if (r.early == io_wait_result::ready) continue;  // a kick, or a stale cancel: again
      if (r.early == io_wait_result::cancelled && unwinding_for_shutdown()) throw_cancelled();
      ec = wait_error(r.early);
      return -1;
    }
    const io_wait_result r = wait_io(pd_, dir, deadline);
    if (r != io_wait_result::ready) {
      ec = wait_error(r);
      return -1;
    }
  }
}

ssize_t pollable::read_raw(void* buf, std::size_t len, bool socket, std::error_code& ec,
                           bool wait_first) {
  ring_target target{buf, len, socket};
  return perform_raw(
      false,
      [](int fd, void* t) {
        auto* rt = static_cast<const ring_target*>(t);
        return ::read(fd, rt->buf, rt->len);
      },
      &target, ec, wait_first, &target);
}

// Sends go to the ring at once, not after a plain try: on machines where entering the kernel is
// dear (page-table isolation), one io_uring_enter for many sends costs less than a send(2) each.
ssize_t pollable::send_raw(const void* buf, std::size_t len, std::error_code& ec) {
  ring_target target{const_cast<void*>(buf), len, true, true};
  return perform_raw(
      true,
      [](int fd, void* t) {
        auto* rt = static_cast<const ring_target*>(t);
        return ::send(fd, rt->buf, rt->len, MSG_NOSIGNAL);
      },
      &target, ec, usable_ring() != nullptr, &target);
}

void pollable::wait_ready(bool write, std::int64_t deadline, std::error_code& ec) {
  ec.clear();
  io_operation guard(pd_);
  if (!guard) {
    ec = closed_error();
    return;
  }
  const io_wait_result r = wait_io(pd_, write ? io_direction::write : io_direction::read, deadline);
  if (r != io_wait_result::ready) ec = wait_error(r);
}

void pollable::connect_raw(const sockaddr* addr, socklen_t len, std::int64_t deadline,
                           std::error_code& ec) {
  ec.clear();
  io_operation guard(pd_);
  if (!guard) {
    ec = closed_error();
    return;
  }
  if (::connect(fd_, addr, len) == 0) return;
  if (errno != EINPROGRESS && errno != EINTR) {
    ec = errno_code();
    return;
  }
  for (;;) {
    const io_wait_result r = wait_io(pd_, io_direction::write, deadline);
    if (r != io_wait_result::ready) {
      ec = wait_error(r);
      return;
    }
    if (connect_settled(fd_, ec)) return;
  }
}

int pollable::accept_raw(std::error_code& ec, std::atomic<std::uint64_t>& backoffs) {
  ec.clear();
  io_operation guard(pd_);
  if (!guard) {
    ec = closed_error();
    return -1;
  }
  std::int64_t backoff = backoff_first_ns;
  for (;;) {
    const std::int64_t deadline = read_deadline_.load(std::memory_order_relaxed);
    int fd = -1, e = 0;
    if (worker_ring* ring = usable_ring()) {
      // Under io_uring the listener's multishot accept takes connections as they come.
      const ring_read_result r = ring_accept(*ring, pd_, deadline);
      if (r.n >= 0) return static_cast<int>(r.n);
      if (r.n == -ECANCELED) {
        if (r.early == io_wait_result::ready) continue;  // a connection, or a kick: again
        if (r.early == io_wait_result::cancelled && unwinding_for_shutdown()) throw_cancelled();
        ec = wait_error(r.early);
        return -1;
      }
      if (r.n != -EAGAIN) e = static_cast<int>(-r.n);
    }
    if (e == 0) {
      fd = take_accepted(pd_);  // one the multishot took before this call left the ring
      if (fd < 0) fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) return fd;
      e = errno;
    }
    if (e == EINTR || e == ECONNABORTED) continue;
    if (out_of_resources(e)) {
      // The pending connection stays queued; no new edge may come, so retry after a pause.
      backoffs.fetch_add(1, std::memory_order_relaxed);
      const std::int64_t now = now_ns();
      if (deadline <= now) {
        ec = std::make_error_code(std::errc::timed_out);
        return -1;
      }
      try {
        sleep_until_ns(std::min(now + backoff, deadline));
      } catch (const weft::cancelled&) {
        if (unwinding_for_shutdown()) throw;
        ec = std::make_error_code(std::errc::operation_canceled);
        return -1;
      }
      backoff = std::min(backoff * 2, backoff_max_ns);
      if (pd_->closing()) {
        ec = closed_error();
        return -1;
      }
      continue;
    }
    if (e != EAGAIN) {
      ec = errno_code(e);
      return -1;
    }
    const io_wait_result r = wait_io(pd_, io_direction::read, deadline);
    if (r != io_wait_result::ready) {
      ec = wait_error(r);
      return -1;
    }
  }
}

}  // namespace weft::detail

namespace weft::io {
namespace {

bool set_nonblocking(int fd) noexcept {
  const int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
}

// A write(2) to a pipe with no reader raises SIGPIPE, which by default ends the process. Block
// it on this thread for the call and swallow the one the call raised, so the caller gets EPIPE
// (the thread cannot switch green threads in between: nothing here parks).
ssize_t write_without_sigpipe(int fd, const void* data, std::size_t size) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigset_t pending;
  sigpending(&pending);
  const bool already_pending = sigismember(&pending, SIGPIPE);
  const ssize_t n = ::write(fd, data, size);
  const int e = errno;
  if (n < 0 && e == EPIPE && !already_pending) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = e;
  return n;
}

}  // namespace

void stream::attach_stream(int fd, std::error_code& ec) noexcept {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ec = std::error_code(errno, std::system_category());
    ::close(fd);
    return;
  }
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
    ec = std::make_error_code(std::errc::operation_not_permitted);
    ::close(fd);
    return;
  }
  if (!set_nonblocking(fd)) {
    ec = std::error_code(errno, std::system_category());
    ::close(fd);
    return;
  }
  socket_ = S_ISSOCK(st.st_mode);
  attach(fd, true, ec);
}

void stream::attach_socket(int fd, std::error_code& ec) noexcept {
  socket_ = true;
  attach(fd, true, ec);
}

stream stream::adopt(int fd, std::error_code& ec) {
  stream s;
  s.attach_stream(fd, ec);
  return s;
}

stream stream::adopt(int fd) {
  std::error_code ec;
  stream s = adopt(fd, ec);
  if (ec) detail::throw_io_error(ec, "weft::io::stream::adopt");
  return s;
}

std::size_t stream::read(std::span<std::byte> buffer, std::error_code& ec) {
  ec.clear();
  if (!usable(ec)) return 0;
  if (buffer.empty()) return 0;
  // After a short read skip the read that would only say EAGAIN, unless the peer hung up.
  const bool wait_first = drained_ && !pd_->hangup.load(std::memory_order_relaxed);
  drained_ = false;
  const ssize_t n = read_raw(buffer.data(), buffer.size(), socket_, ec, wait_first);
  if (n < 0) return 0;
  drained_ = n > 0 && static_cast<std::size_t>(n) < buffer.size();
  return static_cast<std::size_t>(n);
}

std::size_t stream::read(std::span<std::byte> buffer) {
  std::error_code ec;
  const std::size_t n = read(buffer, ec);
  if (ec) detail::throw_io_error(ec, "weft::io::stream::read");
  return n;
}

ssize_t stream::write_some(const std::byte* data, std::size_t size) {
  return socket_ ? ::send(fd_, data, size, MSG_NOSIGNAL) : write_without_sigpipe(fd_, data, size);
}

std::size_t stream::write_all(std::span<const std::byte> data, std::error_code& ec) {
  ec.clear();
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        socket_ ? send_raw(data.data() + done, data.size() - done, ec)
                : perform(
                      true, [&](int) { return write_some(data.data() + done, data.size() - done); },
                      ec);
    if (n < 0) return done;
    done += static_cast<std::size_t>(n);
  }
  if (data.empty()) usable(ec);
  return done;
}

void stream::write_all(std::span<const std::byte> data) {
  std::error_code ec;
  write_all(data, ec);
  if (ec) detail::throw_io_error(ec, "weft::io::stream::write_all");
}

std::pair<stream, stream> pipe(std::error_code& ec) {
  ec.clear();
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    ec = std::error_code(errno, std::system_category());
    return {};
  }
  stream r = stream::adopt(fds[0], ec);
  if (ec) {
    ::close(fds[1]);
    return {};
  }
  stream w = stream::adopt(fds[1], ec);
  if (ec) return {};
  return {std::move(r), std::move(w)};
}

std::pair<stream, stream> pipe() {
  std::error_code ec;
  auto p = pipe(ec);
  if (ec) detail::throw_io_error(ec, "weft::io::pipe");
  return p;
}

fd_waiter::fd_waiter(int fd, std::error_code& ec) {
  ec.clear();
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0) {
    ec = std::error_code(errno, std::system_category());
    return;
  }
  if (!(flags & O_NONBLOCK)) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return;
  }
  attach(fd, false, ec);
}

fd_waiter::fd_waiter(int fd) {
  std::error_code ec;
  fd_waiter w(fd, ec);
  if (ec == std::errc::invalid_argument)
    throw std::invalid_argument("weft::io::fd_waiter: the descriptor must be non-blocking");
  if (ec) detail::throw_io_error(ec, "weft::io::fd_waiter");
  *this = std::move(w);
}

void fd_waiter::wait_readable(clock::time_point deadline, std::error_code& ec) {
  wait_ready(false, deadline == no_deadline ? detail::no_deadline : detail::to_deadline(deadline),
             ec);
}

void fd_waiter::wait_writable(clock::time_point deadline, std::error_code& ec) {
  wait_ready(true, deadline == no_deadline ? detail::no_deadline : detail::to_deadline(deadline),
             ec);
}

void fd_waiter::wait_readable(clock::time_point deadline) {
  std::error_code ec;
  wait_readable(deadline, ec);
  if (ec) detail::throw_io_error(ec, "weft::io::fd_waiter::wait_readable");
}

void fd_waiter::wait_writable(clock::time_point deadline) {
  std::error_code ec;
  wait_writable(deadline, ec);
  if (ec) detail::throw_io_error(ec, "weft::io::fd_waiter::wait_writable");
}

}  // namespace weft::io
