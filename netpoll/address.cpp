// weft::net::address: parsing and printing IPv4 and IPv6 socket addresses.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>
#include <stdexcept>
#include <string>

#include "weft/blocking.hpp"
#include "weft/net.hpp"

namespace weft::net {
namespace {

struct gai_category_t : std::error_category {
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int e) const override { return gai_strerror(e); }
};
const gai_category_t gai_category_instance;

}  // namespace

address address::from_sockaddr(const sockaddr* sa, socklen_t len) noexcept {
  address a;
  if (len > sizeof a.storage_) len = sizeof a.storage_;
  std::memcpy(&a.storage_, sa, len);
  a.len_ = len;
  return a;
}

address address::parse(std::string_view text, std::error_code& ec) {
  ec.clear();
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return {};
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (err != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return {};
  }
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  const std::string h(host);
  address a;
  if (h.empty() || h == "*") {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage_);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_ANY);
    in->sin_port = htons(static_cast<std::uint16_t>(port));
    a.len_ = sizeof(sockaddr_in);
    return a;
  }
  if (h == "localhost") return parse("127.0.0.1:" + std::string(port_text), ec);
  {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage_);
    if (!bracketed && inet_pton(AF_INET, h.c_str(), &in->sin_addr) == 1) {
      in->sin_family = AF_INET;
      in->sin_port = htons(static_cast<std::uint16_t>(port));
      a.len_ = sizeof(sockaddr_in);
      return a;
    }
  }
  {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    if (inet_pton(AF_INET6, h.c_str(), &in6->sin6_addr) == 1) {
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(static_cast<std::uint16_t>(port));
      a.len_ = sizeof(sockaddr_in6);
      return a;
    }
  }
  if (bracketed) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return {};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  // Name resolution blocks (it may ask a DNS server): on a green thread it runs on the blocking
  // pool, so the worker keeps running the others.
  if (int rc = weft::blocking([&] { return getaddrinfo(h.c_str(), nullptr, &hints, &res); });
      rc != 0) {
    ec = std::error_code(rc, gai_category_instance);
    return {};
  }
  a = from_sockaddr(res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (a.is_v6())
    reinterpret_cast<sockaddr_in6*>(&a.storage_)->sin6_port =
        htons(static_cast<std::uint16_t>(port));
  else
    reinterpret_cast<sockaddr_in*>(&a.storage_)->sin_port = htons(static_cast<std::uint16_t>(port));
  return a;
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
