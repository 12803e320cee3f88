// Host-port parsing and name resolution shared by weft::net::address, connect and the datagram
// sockets. Internal.
#pragma once

#include <cstdint>
#include <string_view>
#include <system_error>
#include <vector>

#include "weft/net.hpp"

namespace weft::net::detail_resolve {

// Splits "host:port", "[v6]:port" or ":port"; `bracketed` says the host was in brackets.
bool split_host_port(std::string_view text, std::string_view& host, std::uint16_t& port,
                     bool& bracketed, std::error_code& ec);
// A numeric host (or empty/"*": every IPv4 interface) as an address, without any lookup.
bool numeric_address(std::string_view host, std::uint16_t port, bool bracketed, address& out);

}  // namespace weft::net::detail_resolve

namespace weft::net {
// "host:port" to its addresses before `deadline` (steady ns): numeric ones without a lookup.
std::vector<address> resolve_host_port(std::string_view host_port, std::int64_t deadline,
                                       std::error_code& ec);
}  // namespace weft::net
