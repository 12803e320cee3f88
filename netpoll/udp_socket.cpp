// weft::net::udp_socket: bind, connect, datagrams with truncation reported.
#include "weft/udp.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "io_wait.hpp"
#include "resolve.hpp"
#include "runtime/scheduler.hpp"

namespace weft::net {
namespace {

std::error_code errno_code(int e = errno) noexcept {
  return std::error_code(e, std::system_category());
}

address first_address(std::string_view text) {
  std::error_code ec;
  std::vector<address> found = resolve_host_port(text, detail::no_deadline, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::udp_socket: " + std::string(text));
  return found.front();
}

}  // namespace

udp_socket udp_socket::open(int family, std::error_code& ec) {
  ec.clear();
  const int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ec = errno_code();
    return {};
  }
  udp_socket s;
  s.attach(fd, true, ec);
  return s;
}

udp_socket udp_socket::bind(const address& addr, std::error_code& ec) {
  udp_socket s = open(addr.data()->sa_family, ec);
  if (ec) return {};
  if (::bind(s.fd_, addr.data(), addr.size()) != 0) {
    ec = errno_code();
    return {};
  }
  return s;
}

udp_socket udp_socket::bind(std::string_view addr) {
  std::error_code ec;
  const address a = first_address(addr);
  udp_socket s = bind(a, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::udp_socket::bind to " + a.to_string());
  return s;
}

udp_socket udp_socket::connect(const address& remote, std::error_code& ec) {
  udp_socket s = open(remote.data()->sa_family, ec);
  if (ec) return {};
  if (::connect(s.fd_, remote.data(), remote.size()) != 0) {  // UDP: no handshake to wait for
    ec = errno_code();
    return {};
  }
  return s;
}

udp_socket udp_socket::connect(std::string_view remote) {
  std::error_code ec;
  const address a = first_address(remote);
  udp_socket s = connect(a, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::udp_socket::connect to " + a.to_string());
  return s;
}

std::size_t udp_socket::send_to(std::span<const std::byte> data, const address& to,
                                std::error_code& ec) {
  return send_datagram(data.data(), data.size(), to.data(), to.size(), ec);
}

std::size_t udp_socket::send_to(std::span<const std::byte> data, const address& to) {
  std::error_code ec;
  const std::size_t n = send_to(data, to, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::udp_socket::send_to " + to.to_string());
  return n;
}

std::size_t udp_socket::recv_from(std::span<std::byte> buffer, address& from, std::error_code& ec) {
  sockaddr_storage sa;
  socklen_t len = 0;
  const std::size_t n = recv_datagram(buffer.data(), buffer.size(), &sa, &len, ec);
  from = len ? address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa), len) : address();
  return n;
}

std::size_t udp_socket::recv_from(std::span<std::byte> buffer, address& from) {
  std::error_code ec;
  const std::size_t n = recv_from(buffer, from, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::udp_socket::recv_from");
  return n;
}

std::size_t udp_socket::send(std::span<const std::byte> data, std::error_code& ec) {
  return send_datagram(data.data(), data.size(), nullptr, 0, ec);
}

std::size_t udp_socket::send(std::span<const std::byte> data) {
  std::error_code ec;
  const std::size_t n = send(data, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::udp_socket::send");
  return n;
}

std::size_t udp_socket::recv(std::span<std::byte> buffer, std::error_code& ec) {
  return recv_datagram(buffer.data(), buffer.size(), nullptr, nullptr, ec);
}

std::size_t udp_socket::recv(std::span<std::byte> buffer) {
  std::error_code ec;
  const std::size_t n = recv(buffer, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::udp_socket::recv");
  return n;
}

address udp_socket::local_address() const {
  sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (!pd_ || getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    throw std::system_error(pd_ ? errno_code() : detail::closed_error(),
                            "weft::net::udp_socket::local_address");
  return address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa), len);
}

}  // namespace weft::net
