// weft::net::tcp_stream: connect, read, write, deadlines, close.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "io_wait.hpp"
#include "runtime/scheduler.hpp"
#include "weft/net.hpp"

namespace weft::net {
namespace {

using detail::io_direction;
using detail::io_wait_result;

std::int64_t to_ns(clock::time_point t) noexcept {
  return t == no_deadline ? detail::no_deadline : detail::to_deadline(t);
}

std::error_code errno_code(int e = errno) noexcept {
  return std::error_code(e, std::system_category());
}

}  // namespace

tcp_stream::tcp_stream(tcp_stream&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      pd_(std::exchange(o.pd_, nullptr)),
      read_deadline_(o.read_deadline_.load()),
      write_deadline_(o.write_deadline_.load()),
      drained_(o.drained_) {}

tcp_stream& tcp_stream::operator=(tcp_stream&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    pd_ = std::exchange(o.pd_, nullptr);
    read_deadline_.store(o.read_deadline_.load());
    write_deadline_.store(o.write_deadline_.load());
    drained_ = o.drained_;
  }
  return *this;
}

tcp_stream::~tcp_stream() {
  reset();
}

void tcp_stream::reset() noexcept {
  if (!pd_) return;
  auto& np = detail::netpoller::instance();
  np.close(pd_);
  np.recycle(pd_);
  pd_ = nullptr;
  fd_ = -1;
}

void tcp_stream::close() noexcept {
  // Marks it closed (waking a blocked reader or writer); the descriptor is reused only when the
  // object goes away, so a green thread still inside read() never sees a recycled one.
  if (pd_) detail::netpoller::instance().close(pd_);
}

tcp_stream tcp_stream::adopt(int fd) {
  tcp_stream s;
  try {
    s.pd_ = detail::netpoller::instance().open(fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
  s.fd_ = fd;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

tcp_stream tcp_stream::connect(const address& addr, std::chrono::nanoseconds timeout,
                               std::error_code& ec) {
  ec.clear();
  const int fd = ::socket(addr.data()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ec = errno_code();
    return {};
  }
  tcp_stream s;
  try {
    s = adopt(fd);
  } catch (const std::system_error& e) {
    ec = e.code();
    return {};
  }
  const std::int64_t deadline =
      timeout.count() > 0 ? detail::now_ns() + timeout.count() : detail::no_deadline;
  detail::io_operation op(s.pd_);
  if (::connect(fd, addr.data(), addr.size()) == 0) return s;
  if (errno != EINPROGRESS && errno != EINTR) {
    ec = errno_code();
    return {};
  }
  for (;;) {
    const io_wait_result r = detail::wait_io(s.pd_, io_direction::write, deadline);
    if (r != io_wait_result::ready) {
      ec = detail::wait_error(r);
      return {};
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == 0) {
      // Writable with no error may still be "in progress" after a spurious wake-up.
      sockaddr_storage peer;
      socklen_t plen = sizeof peer;
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0) return s;
      if (errno != ENOTCONN) {
        ec = errno_code();
        return {};
      }
      continue;
    }
    ec = errno_code(err);
    return {};
  }
}

tcp_stream tcp_stream::connect(const address& addr, std::chrono::nanoseconds timeout) {
  std::error_code ec;
  tcp_stream s = connect(addr, timeout, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::tcp_stream::connect to " + addr.to_string());
  return s;
}

tcp_stream tcp_stream::connect(std::string_view addr, std::chrono::nanoseconds timeout) {
  return connect(address::parse(addr), timeout);
}

std::size_t tcp_stream::read(std::span<std::byte> buffer, std::error_code& ec) {
  ec.clear();
  detail::io_operation op(pd_);
  if (!op) {
    ec = detail::closed_error();
    return 0;
  }
  if (buffer.empty()) return 0;
  for (;;) {
    if (!drained_ || pd_->hangup) {
      const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
      if (n >= 0) {
        drained_ = n > 0 && static_cast<std::size_t>(n) < buffer.size();
        detail::coop_point();
        return static_cast<std::size_t>(n);
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        ec = errno_code();
        return 0;
      }
    }
    drained_ = false;
    const io_wait_result r =
        detail::wait_io(pd_, io_direction::read, read_deadline_.load(std::memory_order_relaxed));
    if (r != io_wait_result::ready) {
      ec = detail::wait_error(r);
      return 0;
    }
  }
}

std::size_t tcp_stream::read(std::span<std::byte> buffer) {
  std::error_code ec;
  const std::size_t n = read(buffer, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::tcp_stream::read");
  return n;
}

std::size_t tcp_stream::write_all(std::span<const std::byte> data, std::error_code& ec) {
  ec.clear();
  detail::io_operation op(pd_);
  if (!op) {
    ec = detail::closed_error();
    return 0;
  }
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      ec = errno_code();
      return done;
    }
    const io_wait_result r =
        detail::wait_io(pd_, io_direction::write, write_deadline_.load(std::memory_order_relaxed));
    if (r != io_wait_result::ready) {
      ec = detail::wait_error(r);
      return done;
    }
  }
  detail::coop_point();
  return done;
}

void tcp_stream::write_all(std::span<const std::byte> data) {
  std::error_code ec;
  write_all(data, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::tcp_stream::write_all");
}

void tcp_stream::shutdown(shutdown_how how) {
  detail::io_operation op(pd_);
  if (!op) throw std::system_error(detail::closed_error(), "weft::net::tcp_stream::shutdown");
  if (::shutdown(fd_, static_cast<int>(how)) != 0 && errno != ENOTCONN)
    throw std::system_error(errno_code(), "weft::net::tcp_stream::shutdown");
}

void tcp_stream::set_read_deadline(clock::time_point t) noexcept {
  read_deadline_.store(to_ns(t), std::memory_order_relaxed);
  if (pd_) detail::netpoller::instance().kick(pd_);
}

void tcp_stream::set_write_deadline(clock::time_point t) noexcept {
  write_deadline_.store(to_ns(t), std::memory_order_relaxed);
  if (pd_) detail::netpoller::instance().kick(pd_);
}

void tcp_stream::set_read_timeout(std::chrono::nanoseconds d) noexcept {
  set_read_deadline(clock::now() + d);
}

void tcp_stream::set_write_timeout(std::chrono::nanoseconds d) noexcept {
  set_write_deadline(clock::now() + d);
}

void tcp_stream::set_nodelay(bool on) {
  int v = on ? 1 : 0;
  if (!pd_ || setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0)
    throw std::system_error(pd_ ? errno_code() : detail::closed_error(),
                            "weft::net::tcp_stream::set_nodelay");
}

address tcp_stream::local_address() const {
  sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (!pd_ || getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    throw std::system_error(pd_ ? errno_code() : detail::closed_error(),
                            "weft::net::tcp_stream::local_address");
  return address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa), len);
}

address tcp_stream::peer_address() const {
  sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (!pd_ || getpeername(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    throw std::system_error(pd_ ? errno_code() : detail::closed_error(),
                            "weft::net::tcp_stream::peer_address");
  return address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa), len);
}

}  // namespace weft::net
