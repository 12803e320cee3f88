// Sending and receiving one datagram (UDP, Unix datagram sockets), truncation reported.
#include <sys/socket.h>

#include <cerrno>

#include "ring.hpp"
#include "weft/detail/pollable.hpp"

namespace weft::detail {

// Under io_uring a send goes to the worker's ring at once (see send_raw); a receive tries the
// plain call first and waits on the ring, which then delivers the datagram itself.
std::size_t pollable::send_datagram(const void* data, std::size_t size, const sockaddr* to,
                                    socklen_t to_len, std::error_code& ec) {
  iovec iov{const_cast<void*>(data), size};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(to);
  msg.msg_namelen = to_len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ring_target target{nullptr, 0, true, true, &msg};
  const ssize_t n = perform_raw(
      true, [](int fd, void* m) { return ::sendmsg(fd, static_cast<msghdr*>(m), MSG_NOSIGNAL); },
      &msg, ec, usable_ring() != nullptr, &target);
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

std::size_t pollable::recv_datagram(void* buffer, std::size_t size, sockaddr_storage* from,
                                    socklen_t* from_len, std::error_code& ec) {
  iovec iov{buffer, size};
  msghdr msg{};
  msg.msg_name = from;
  msg.msg_namelen = from ? sizeof(sockaddr_storage) : 0;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ring_target target{nullptr, 0, true, false, &msg};
  const ssize_t n = perform_raw(
      false,
      [](int fd, void* m) { return ::recvmsg(fd, static_cast<msghdr*>(m), MSG_CMSG_CLOEXEC); },
      &msg, ec, false, &target);
  if (n < 0) return 0;
  if (from_len) *from_len = msg.msg_namelen;
  if (msg.msg_flags & MSG_TRUNC) ec = std::make_error_code(std::errc::message_size);
  return static_cast<std::size_t>(n);
}

}  // namespace weft::detail
