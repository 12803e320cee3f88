// Sending and receiving one datagram (UDP, Unix datagram sockets), truncation reported.
#include <sys/socket.h>

#include <cerrno>

#include "weft/detail/pollable.hpp"

namespace weft::detail {

std::size_t pollable::send_datagram(const void* data, std::size_t size, const sockaddr* to,
                                    socklen_t to_len, std::error_code& ec) {
  const ssize_t n = perform(
      true, [&](int fd) { return ::sendto(fd, data, size, MSG_NOSIGNAL, to, to_len); }, ec);
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

std::size_t pollable::recv_datagram(void* buffer, std::size_t size, sockaddr_storage* from,
                                    socklen_t* from_len, std::error_code& ec) {
  int flags = 0;
  const ssize_t n = perform(
      false,
      [&](int fd) {
        iovec iov{buffer, size};
        msghdr msg{};
        msg.msg_name = from;
        msg.msg_namelen = from ? sizeof(sockaddr_storage) : 0;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        const ssize_t r = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        flags = msg.msg_flags;
        if (from_len) *from_len = msg.msg_namelen;
        return r;
      },
      ec);
  if (n < 0) return 0;
  if (flags & MSG_TRUNC) ec = std::make_error_code(std::errc::message_size);
  return static_cast<std::size_t>(n);
}

}  // namespace weft::detail
