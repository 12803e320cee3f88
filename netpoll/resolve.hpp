// Host-port parsing and name resolution shared by weft::net::address, connect and the datagram
// sockets. Internal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "weft/chan.hpp"
#include "weft/net.hpp"

namespace weft::net::detail_resolve {

// Splits "host:port", "[v6]:port" or ":port"; `bracketed` says the host was in brackets.
bool split_host_port(std::string_view text, std::string_view& host, std::uint16_t& port,
                     bool& bracketed, std::error_code& ec);
// A numeric host (or empty/"*": every IPv4 interface) as an address, without any lookup.
bool numeric_address(std::string_view host, std::uint16_t port, bool bracketed, address& out);
// "host:port" without a lookup: true when `out` (numeric) or `ec` (malformed) is the answer,
// false when `host` must be looked up.
bool without_lookup(std::string_view host_port, std::vector<address>& out, std::string_view& host,
                    std::uint16_t& port, std::error_code& ec);

// One getaddrinfo. Run by start_lookup in a green thread of its own, on the blocking pool, that
// shares it with the caller: a caller that stops waiting (timeout, cancel) leaves it behind.
struct lookup {
  std::string host;
  std::uint16_t port = 0;
  std::vector<address> found;
  std::error_code ec;
  weft::chan<bool> done{1};  // receives once found/ec are set
};
void run_lookup(lookup& l);  // blocks the calling OS thread
std::shared_ptr<lookup> start_lookup(std::string_view host, std::uint16_t port);

}  // namespace weft::net::detail_resolve

namespace weft::net {
// "host:port" to its addresses before `deadline` (steady ns): numeric ones without a lookup.
std::vector<address> resolve_host_port(std::string_view host_port, std::int64_t deadline,
                                       std::error_code& ec);
}  // namespace weft::net
