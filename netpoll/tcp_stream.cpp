// weft::net::tcp_stream: connect (to each resolved address in turn), shut down, addresses.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "io_wait.hpp"
#include "resolve.hpp"
#include "runtime/scheduler.hpp"
#include "weft/net.hpp"

namespace weft::net {
namespace {

std::error_code errno_code(int e = errno) noexcept {
  return std::error_code(e, std::system_category());
}

}  // namespace

tcp_stream tcp_stream::adopt(int fd) {
  tcp_stream s;
  std::error_code ec;
  s.attach_socket(fd, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::tcp_stream::adopt");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

tcp_stream tcp_stream::connect(const address& addr, std::chrono::nanoseconds timeout,
                               std::error_code& ec) {
  const std::int64_t deadline =
      timeout.count() > 0 ? detail::now_ns() + timeout.count() : detail::no_deadline;
  return connect_before(addr, deadline, ec);
}

tcp_stream tcp_stream::connect_before(const address& addr, std::int64_t deadline,
                                      std::error_code& ec) {
  ec.clear();
  const int fd = ::socket(addr.data()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ec = errno_code();
    return {};
  }
  tcp_stream s;
  s.attach_socket(fd, ec);
  if (ec) return {};
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  s.connect_raw(addr.data(), addr.size(), deadline, ec);
  if (ec) return {};
  return s;
}

tcp_stream tcp_stream::connect(const address& addr, std::chrono::nanoseconds timeout) {
  std::error_code ec;
  tcp_stream s = connect(addr, timeout, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::tcp_stream::connect to " + addr.to_string());
  return s;
}

tcp_stream tcp_stream::connect(std::string_view addr, std::chrono::nanoseconds timeout,
                               std::error_code& ec) {
  const std::int64_t deadline =
      timeout.count() > 0 ? detail::now_ns() + timeout.count() : detail::no_deadline;
  std::vector<address> candidates = resolve_host_port(addr, deadline, ec);
  if (ec) return {};
  // Go's dialer: each address in turn, the first error reported if none connects.
  std::error_code first;
  for (const address& a : candidates) {
    tcp_stream s = connect_before(a, deadline, ec);
    if (!ec) return s;
    if (ec == std::errc::operation_canceled || ec == std::errc::timed_out) return {};
    if (!first) first = ec;
  }
  ec = first;
  return {};
}

tcp_stream tcp_stream::connect(std::string_view addr, std::chrono::nanoseconds timeout) {
  std::error_code ec;
  tcp_stream s = connect(addr, timeout, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::tcp_stream::connect to " + std::string(addr));
  return s;
}

void tcp_stream::shutdown(shutdown_how how) {
  detail::io_operation op(pd_);
  if (!op) throw std::system_error(detail::closed_error(), "weft::net::tcp_stream::shutdown");
  if (::shutdown(fd_, static_cast<int>(how)) != 0 && errno != ENOTCONN)
    throw std::system_error(errno_code(), "weft::net::tcp_stream::shutdown");
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
