// weft::net::tcp_listener: bind, listen, accept (with back-off when descriptors run out).
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

}  // namespace

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
  l.attach(fd, true, ec);
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
  const int fd = accept_raw(ec, backoffs_);
  if (fd < 0) return {};
  try {
    return tcp_stream::adopt(fd);
  } catch (const std::system_error& e) {
    ec = e.code();
    return {};
  }
}

tcp_stream tcp_listener::accept() {
  std::error_code ec;
  tcp_stream s = accept(ec);
  if (ec) detail::throw_io_error(ec, "weft::net::tcp_listener::accept");
  return s;
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
