// weft::net::address: parsing (names through resolve()) and printing IPv4 and IPv6 addresses.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "resolve.hpp"
#include "weft/net.hpp"

namespace weft::net {

address address::from_sockaddr(const sockaddr* sa, socklen_t len) noexcept {
  address a;
  if (len > sizeof a.storage_) len = sizeof a.storage_;
  std::memcpy(&a.storage_, sa, len);
  a.len_ = len;
  return a;
}

address address::parse(std::string_view text, std::error_code& ec) {
  ec.clear();
  std::string_view host;
  std::uint16_t port = 0;
  bool bracketed = false;
  if (!detail_resolve::split_host_port(text, host, port, bracketed, ec)) return {};
  address a;
  if (host == "localhost") host = "127.0.0.1";
  if (detail_resolve::numeric_address(host, port, bracketed, a)) return a;
  if (bracketed) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return {};
  }
  std::vector<address> all = resolve(host, port, std::chrono::seconds(10), ec);
  if (ec) return {};
  return all.front();
}

address address::parse(std::string_view text) {
  std::error_code ec;
  address a = parse(text, ec);
  if (ec)
    throw std::system_error(ec, "weft::net::address: cannot parse '" + std::string(text) + "'");
  return a;
}

std::uint16_t address::port() const noexcept {
  if (len_ == 0) return 0;
  return ntohs(is_v6() ? reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port
                       : reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
}

std::string address::to_string() const {
  if (len_ == 0) return "(none)";
  char buf[INET6_ADDRSTRLEN] = {};
  std::string out;
  if (is_v6()) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof buf);
    out.push_back('[');
    out.append(buf);
    out.push_back(']');
  } else {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
    out.append(buf);
  }
  out.push_back(':');
  out.append(std::to_string(port()));
  return out;
}

}  // namespace weft::net
