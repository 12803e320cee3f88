// weft::net::udp_socket: UDP over IPv4 and IPv6 for green threads (DNS, metrics, QUIC-style
// protocols). A receive parks the green thread on the netpoller, not its worker.
//
//   auto server = weft::net::udp_socket::bind("127.0.0.1:0");
//   weft::go([&] {
//     std::byte buf[1500];
//     weft::net::address from;
//     for (;;) {
//       std::size_t n = server.recv_from(buf, from);   // one datagram, whole or an error
//       server.send_to(std::span(buf, n), from);
//     }
//   });
//   auto client = weft::net::udp_socket::connect(server.local_address().to_string());
//   client.send("ping");
//
// Every call that can fail has a std::error_code overload that does not throw. A datagram
// longer than the buffer fills it and fails with errc::message_size (the rest is lost, as the
// kernel drops it, but never silently). Waits are cancellable (weft/cancel.hpp).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>

#include "weft/net.hpp"

namespace weft::net {

class udp_socket : private detail::pollable {
 public:
  udp_socket() noexcept;
  udp_socket(udp_socket&& other) noexcept;
  udp_socket& operator=(udp_socket&& other) noexcept;
  ~udp_socket();

  // A socket bound to `addr` ("0.0.0.0:0" picks a port; "[::]:53"; names through resolve()).
  static udp_socket bind(std::string_view addr);
  static udp_socket bind(const address& addr, std::error_code& ec);
  // A socket connected to `remote` (bound to an ephemeral port): send and recv talk to it only,
  // and an ICMP "port unreachable" from it fails a later call with errc::connection_refused.
  static udp_socket connect(std::string_view remote);
  static udp_socket connect(const address& remote, std::error_code& ec);

  // Sends one datagram; returns its size. One larger than the path allows gives
  // errc::message_size.
  std::size_t send_to(std::span<const std::byte> data, const address& to);
  std::size_t send_to(std::span<const std::byte> data, const address& to, std::error_code& ec);
  std::size_t send_to(std::string_view text, const address& to) {
    return send_to(std::as_bytes(std::span(text)), to);
  }
  // Receives one datagram (waiting for one), and who sent it. One green thread receives on a
  // socket at a time (a second at once is a std::logic_error), because a receive reads one
  // datagram ahead when one is queued (recvmmsg): the next receive returns it without a system
  // call, and a receive that found the queue empty lets the next one wait for the netpoller
  // instead of asking the kernel only to hear EAGAIN. Reading the descriptor directly
  // (native_handle) would miss a datagram held that way.

  std::size_t recv_from(std::span<std::byte> buffer, address& from);
  std::size_t recv_from(std::span<std::byte> buffer, address& from, std::error_code& ec);

  // On a connected socket.
  std::size_t send(std::span<const std::byte> data);
  std::size_t send(std::span<const std::byte> data, std::error_code& ec);
  std::size_t send(std::string_view text) { return send(std::as_bytes(std::span(text))); }
  std::size_t recv(std::span<std::byte> buffer);
  std::size_t recv(std::span<std::byte> buffer, std::error_code& ec);

  address local_address() const;

  // Deadlines bound sends and receives (errc::timed_out), as for tcp_stream.
  using detail::pollable::close;
  using detail::pollable::is_open;
  using detail::pollable::native_handle;
  using detail::pollable::set_deadline;
  using detail::pollable::set_read_deadline;
  using detail::pollable::set_read_timeout;
  using detail::pollable::set_write_deadline;
  using detail::pollable::set_write_timeout;

 private:
  struct held_datagram;

  static udp_socket open(int family, std::error_code& ec);
  std::size_t receive(std::span<std::byte> buffer, sockaddr_storage* from, socklen_t* from_len,
                      std::error_code& ec);

  std::unique_ptr<held_datagram> held_;  // the datagram read ahead, if any
  bool drained_ = false;                 // the last receive emptied the kernel's queue
  std::atomic<bool> receiving_{false};
};

}  // namespace weft::net
