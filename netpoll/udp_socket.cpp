// weft::net::udp_socket: bind, connect, datagrams with truncation reported.
#include "weft/udp.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

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

// Where a receive puts the datagram after the caller's: a UDP datagram is at most 64 KiB. One
// per OS thread, used only inside one recvmmsg call and the copy right after it (the green
// thread may move to another worker once the call returns).
constexpr std::size_t max_datagram = 64 * 1024;

std::byte* lookahead_area() {
  thread_local std::unique_ptr<std::byte[]> area(new std::byte[max_datagram]);
  return area.get();
}

}  // namespace

struct udp_socket::held_datagram {
  std::vector<std::byte> bytes;  // its capacity is kept for the next one
  sockaddr_storage from{};
  socklen_t from_len = 0;
  bool cut = false;  // longer than max_datagram (an IPv6 jumbogram): reported when returned
  bool full = false;
};

udp_socket::udp_socket() noexcept = default;
udp_socket::~udp_socket() = default;

udp_socket::udp_socket(udp_socket&& other) noexcept
    : detail::pollable(std::move(other)),
      held_(std::move(other.held_)),
      drained_(std::exchange(other.drained_, false)) {}

udp_socket& udp_socket::operator=(udp_socket&& other) noexcept {
  detail::pollable::operator=(std::move(other));
  held_ = std::move(other.held_);
  drained_ = std::exchange(other.drained_, false);
  return *this;
}

// Invariant: held_->full only while the kernel's queue held that datagram after the one
// returned before it; it is returned before anything is read from the kernel again.
std::size_t udp_socket::receive(std::span<std::byte> buffer, sockaddr_storage* from,
                                socklen_t* from_len, std::error_code& ec) {
  ec.clear();
  if (!usable(ec)) return 0;
  if (receiving_.exchange(true, std::memory_order_acquire))
    throw std::logic_error("weft::net::udp_socket: two green threads receive at once");
  struct end_receive {
    std::atomic<bool>& flag;
    ~end_receive() { flag.store(false, std::memory_order_release); }
  } end{receiving_};

  if (held_ && held_->full) {
    held_datagram& h = *held_;
    h.full = false;
    const std::size_t n = std::min(buffer.size(), h.bytes.size());
    if (n) std::memcpy(buffer.data(), h.bytes.data(), n);
    if (from) std::memcpy(from, &h.from, h.from_len);
    if (from_len) *from_len = h.from_len;
    if (h.cut || h.bytes.size() > buffer.size()) ec = std::make_error_code(std::errc::message_size);
    return n;
  }

  // After a receive that emptied the queue, skip the call that would only say EAGAIN, unless an
  // error (an ICMP refusal) may be waiting.
  const bool wait_first = drained_ && !pd_->hangup.load(std::memory_order_relaxed);
  drained_ = false;
  std::size_t size = 0;
  int flags = 0;
  struct lookahead {
    std::span<std::byte> buffer;
    sockaddr_storage* from;
    socklen_t* from_len;
    std::unique_ptr<held_datagram>& held;
    std::size_t& size;
    int& flags;
  } call{buffer, from, from_len, held_, size, flags};
  // Under io_uring, a receive that would wait takes one datagram into the caller's buffer
  // through the worker's ring instead (no lookahead then).
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_name = from;
  msg.msg_namelen = from ? sizeof(sockaddr_storage) : 0;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  detail::ring_target target{nullptr, 0, true, false, &msg};
  const ssize_t count = perform_raw(
      false,
      [](int fd, void* ctx) -> ssize_t {
        auto& c = *static_cast<lookahead*>(ctx);
        std::byte* area = lookahead_area();
        iovec iov[2] = {{c.buffer.data(), c.buffer.size()}, {area, max_datagram}};
        sockaddr_storage next_from;
        mmsghdr m[2]{};
        m[0].msg_hdr.msg_name = c.from;
        m[0].msg_hdr.msg_namelen = c.from ? sizeof(sockaddr_storage) : 0;
        m[0].msg_hdr.msg_iov = &iov[0];
        m[0].msg_hdr.msg_iovlen = 1;
        m[1].msg_hdr.msg_name = &next_from;
        m[1].msg_hdr.msg_namelen = sizeof next_from;
        m[1].msg_hdr.msg_iov = &iov[1];
        m[1].msg_hdr.msg_iovlen = 1;
        const int r = ::recvmmsg(fd, m, 2, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, nullptr);
        if (r <= 0) return r;
        c.size = m[0].msg_len;
        c.flags = m[0].msg_hdr.msg_flags;
        if (c.from_len) *c.from_len = m[0].msg_hdr.msg_namelen;
        if (r == 2) {
          if (!c.held) c.held = std::make_unique<held_datagram>();
          held_datagram& h = *c.held;
          h.bytes.assign(area, area + m[1].msg_len);
          h.from = next_from;
          h.from_len = m[1].msg_hdr.msg_namelen;
          h.cut = (m[1].msg_hdr.msg_flags & MSG_TRUNC) != 0;
          h.full = true;
        }
        return r;
      },
      &call, ec, wait_first, &target);
  if (count < 0) return 0;
  if (target.on_ring) {
    // One datagram, and whether more wait is unknown: the next receive asks the ring again,
    // whose first try is the kernel's own, without a system call of ours.
    drained_ = true;
    if (from_len) *from_len = msg.msg_namelen;
    if (msg.msg_flags & MSG_TRUNC) ec = std::make_error_code(std::errc::message_size);
    return static_cast<std::size_t>(count);
  }
  drained_ = count == 1;
  if (flags & MSG_TRUNC) ec = std::make_error_code(std::errc::message_size);
  return size;
}

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
  // UDP: no handshake to wait for; a connect interrupted by a signal is simply made again.
  int r;
  while ((r = ::connect(s.fd_, remote.data(), remote.size())) != 0 && errno == EINTR) {
  }
  if (r != 0) {
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
  const std::size_t n = receive(buffer, &sa, &len, ec);
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
  return receive(buffer, nullptr, nullptr, ec);
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
