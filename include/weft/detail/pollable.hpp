// The base of every weft I/O object: a descriptor registered with the netpoller, a read and a
// write deadline, and the loop that retries a non-blocking call after waiting for readiness.
// Users see it through weft::io::stream, the sockets in weft/net.hpp, weft/udp.hpp and
// weft/unix_socket.hpp, and weft::io::fd_waiter.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <system_error>
#include <type_traits>

namespace weft {
template <class T>
class task;
}  // namespace weft

namespace weft::detail {

struct poll_descriptor;

// A call of pollable::perform_raw as a request that may wait on an io_uring ring instead
// (netpoll/ring.hpp): a read into `buf` (recv(2) for a socket), a socket's send from it, or,
// with `msg`, a datagram's recvmsg(2) or sendmsg(2). `on_ring` says the result came from the
// ring (then `msg`'s flags and name length are the kernel's).
struct ring_target {
  void* buf;
  std::size_t len;
  bool socket;
  bool send = false;
  msghdr* msg = nullptr;
  bool on_ring = false;
};

class pollable {
 public:
  using clock = std::chrono::steady_clock;

  pollable() = default;
  pollable(pollable&& other) noexcept;
  pollable& operator=(pollable&& other) noexcept;
  pollable(const pollable&) = delete;
  pollable& operator=(const pollable&) = delete;
  ~pollable() { reset(); }

  // Closes now. A green thread blocked on this object returns with errc::bad_file_descriptor.
  // Idempotent; the destructor calls it.
  void close() noexcept;
  bool is_open() const noexcept { return pd_ != nullptr; }
  int native_handle() const noexcept { return fd_; }

  // Deadlines bound every later read or write, and one already waiting (Go's SetDeadline).
  // A passed deadline fails the call with errc::timed_out; clock::time_point::max() clears it.
  void set_read_deadline(clock::time_point t) noexcept;
  void set_write_deadline(clock::time_point t) noexcept;
  void set_deadline(clock::time_point t) noexcept {
    set_read_deadline(t);
    set_write_deadline(t);
  }
  // The same, relative to now.
  void set_read_timeout(std::chrono::nanoseconds d) noexcept;
  void set_write_timeout(std::chrono::nanoseconds d) noexcept;

 protected:
  // Registers `fd` (non-blocking already). When `owned`, the object closes it; else close()
  // only unregisters it. On failure an owned fd is closed and `ec` set.
  void attach(int fd, bool owned, std::error_code& ec) noexcept;
  // Throwing form; `what` names the caller.
  void attach(int fd, bool owned, const char* what);
  // Closes and forgets the descriptor; the netpoller reuses its record.
  void reset() noexcept;

  // Runs `op(fd)`, a non-blocking call returning >= 0 or -1 with errno, until it succeeds or
  // fails with anything but EAGAIN/EINTR; between tries waits until the fd is readable (or
  // writable) or the direction's deadline passes. Returns -1 with `ec` set on failure.
  // `wait_first` waits before the first try (the caller knows it would say EAGAIN).
  template <class Op>
  ssize_t perform(bool write, Op&& op, std::error_code& ec, bool wait_first = false) {
    using fn = std::remove_reference_t<Op>;
    return perform_raw(
        write, [](int fd, void* f) { return static_cast<ssize_t>((*static_cast<fn*>(f))(fd)); },
        const_cast<void*>(static_cast<const void*>(&op)), ec, wait_first);
  }
  ssize_t perform_raw(bool write, ssize_t (*op)(int fd, void* ctx), void* ctx, std::error_code& ec,
                      bool wait_first, ring_target* target = nullptr);
  // perform() for a stream's read of up to `len` bytes (recv(2) for a socket, else read(2)).
  // Under io_uring, a read that would wait is queued on the worker's ring instead, and the
  // green thread wakes with the data (netpoll/ring.hpp).
  ssize_t read_raw(void* buf, std::size_t len, bool socket, std::error_code& ec, bool wait_first);
  // A socket's send(2) of up to `len` bytes (MSG_NOSIGNAL). Under io_uring it is queued on the
  // worker's ring at once and sent when the ring is next entered, with everything else queued.
  ssize_t send_raw(const void* buf, std::size_t len, std::error_code& ec);
  // Waits until the fd is readable (writable) or `deadline` (steady ns) passes.
  void wait_ready(bool write, std::int64_t deadline, std::error_code& ec);
  // Accepts a connection on a listening socket (non-blocking, close-on-exec), backing off while
  // the process is out of descriptors or memory (Go's net/http: 5 ms doubling to 1 s).
  int accept_raw(std::error_code& ec, std::atomic<std::uint64_t>& backoffs);
  // Connects the (non-blocking) socket, waiting until `deadline` (steady ns) for the handshake.
  void connect_raw(const sockaddr* addr, socklen_t len, std::int64_t deadline, std::error_code& ec);
  // One datagram each (netpoll/datagram.cpp). A datagram longer than `size` fills the buffer and
  // reports errc::message_size: the rest is gone, and the caller must hear of it.
  std::size_t send_datagram(const void* data, std::size_t size, const sockaddr* to,
                            socklen_t to_len, std::error_code& ec);
  std::size_t recv_datagram(void* buffer, std::size_t size, sockaddr_storage* from,
                            socklen_t* from_len, std::error_code& ec);
  // The same four for a stackless task (netpoll/async_io.cpp): coroutines to co_await at once,
  // with the same results; they yield when the task's budget is spent.
  task<ssize_t> async_perform(bool write, ssize_t (*op)(int fd, void* ctx), void* ctx,
                              std::error_code& ec, bool wait_first);
  task<void> async_wait_ready(bool write, std::int64_t deadline, std::error_code& ec);
  task<int> async_accept_raw(std::error_code& ec, std::atomic<std::uint64_t>& backoffs);
  task<void> async_connect_raw(const sockaddr* addr, socklen_t len, std::int64_t deadline,
                               std::error_code& ec);
  // Sets `ec` to bad_file_descriptor and returns false once closed.
  bool usable(std::error_code& ec) const noexcept;

  int fd_ = -1;
  poll_descriptor* pd_ = nullptr;
  std::atomic<std::int64_t> read_deadline_{INT64_MAX};
  std::atomic<std::int64_t> write_deadline_{INT64_MAX};
};

// What a throwing overload throws for `ec`: weft::cancelled for operation_canceled, else
// std::system_error naming `what`.
[[noreturn]] void throw_io_error(const std::error_code& ec, const char* what);

}  // namespace weft::detail
