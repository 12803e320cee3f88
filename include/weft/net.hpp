// weft::net: TCP for green threads. Calls block the calling green thread only: a green thread
// waiting on a socket is parked on the runtime's epoll netpoller and holds no worker. From a
// plain OS thread the same calls block that thread. Errors are std::system_error; every call
// that can fail also has an overload taking std::error_code& that does not throw (as asio).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace weft::detail {
struct poll_descriptor;
}

namespace weft::net {

using clock = std::chrono::steady_clock;
// A deadline that never passes: the default, and how to clear one.
inline constexpr clock::time_point no_deadline = clock::time_point::max();

// An IPv4 or IPv6 socket address.
class address {
 public:
  address() = default;
  // "127.0.0.1:8080", "[::1]:8080", "localhost:8080", ":8080" (every IPv4 interface),
  // "[::]:8080" (every interface). Other host names are resolved with getaddrinfo, which blocks
  // the worker while it runs: prefer numeric addresses on hot paths.
  static address parse(std::string_view host_port);
  static address parse(std::string_view host_port, std::error_code& ec);
  static address from_sockaddr(const sockaddr* sa, socklen_t len) noexcept;

  std::uint16_t port() const noexcept;
  bool is_v6() const noexcept { return storage_.ss_family == AF_INET6; }
  bool empty() const noexcept { return len_ == 0; }
  std::string to_string() const;  // "127.0.0.1:8080", "[::1]:8080"

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

enum class shutdown_how { read = SHUT_RD, write = SHUT_WR, both = SHUT_RDWR };

// Every call that waits (connect, read, write_all, accept) is cancellable (weft/cancel.hpp): it
// throws weft::cancelled, or its error_code overload gives errc::operation_canceled.
//
// A connected TCP socket. One green thread may read while another writes; two concurrent reads
// (or writes) are a logic_error. Move-only; the destructor closes it. TCP_NODELAY is on by
// default, as in Go: request/response traffic should not wait for Nagle.
class tcp_stream {
 public:
  tcp_stream() = default;
  tcp_stream(tcp_stream&& other) noexcept;
  tcp_stream& operator=(tcp_stream&& other) noexcept;
  tcp_stream(const tcp_stream&) = delete;
  tcp_stream& operator=(const tcp_stream&) = delete;
  ~tcp_stream();

  // Connects to `addr`; a zero timeout waits as long as the kernel does. A refused connection
  // gives errc::connection_refused, a timeout errc::timed_out.
  static tcp_stream connect(std::string_view addr, std::chrono::nanoseconds timeout = {});
  static tcp_stream connect(const address& addr, std::chrono::nanoseconds timeout = {});
  static tcp_stream connect(const address& addr, std::chrono::nanoseconds timeout,
                            std::error_code& ec);

  // Reads what is available (at least one byte, waiting if none is); 0 means the peer closed its
  // side (end of stream). A reset peer gives errc::connection_reset; a passed read deadline
  // errc::timed_out; a stream closed by this process errc::bad_file_descriptor.
  std::size_t read(std::span<std::byte> buffer);
  std::size_t read(std::span<std::byte> buffer, std::error_code& ec);
  std::size_t read(std::span<char> buffer) { return read(std::as_writable_bytes(buffer)); }
  std::size_t read(std::span<char> buffer, std::error_code& ec) {
    return read(std::as_writable_bytes(buffer), ec);
  }

  // Writes every byte, waiting for buffer space as needed. The overload with `ec` returns how
  // many bytes were written before an error (a reset or closed peer gives
  // errc::broken_pipe or errc::connection_reset; no SIGPIPE is raised).
  void write_all(std::span<const std::byte> data);
  std::size_t write_all(std::span<const std::byte> data, std::error_code& ec);
  void write_all(std::string_view text) { write_all(std::as_bytes(std::span(text))); }
  std::size_t write_all(std::string_view text, std::error_code& ec) {
    return write_all(std::as_bytes(std::span(text)), ec);
  }

  // Half-close: shutdown(write) sends FIN; the peer reads end of stream, and can still write.
  void shutdown(shutdown_how how = shutdown_how::write);
  // Closes now. A green thread blocked in read or write on this stream returns with
  // errc::bad_file_descriptor. Idempotent; the destructor calls it.
  void close() noexcept;

  // Deadlines bound every later read or write, and one already waiting (Go's SetDeadline).
  // A passed deadline fails the call with errc::timed_out; no_deadline clears it.
  void set_read_deadline(clock::time_point t) noexcept;
  void set_write_deadline(clock::time_point t) noexcept;
  void set_deadline(clock::time_point t) noexcept {
    set_read_deadline(t);
    set_write_deadline(t);
  }
  // The same, relative to now.
  void set_read_timeout(std::chrono::nanoseconds d) noexcept;
  void set_write_timeout(std::chrono::nanoseconds d) noexcept;

  void set_nodelay(bool on);
  address local_address() const;
  address peer_address() const;
  bool is_open() const noexcept { return pd_ != nullptr; }
  int native_handle() const noexcept { return fd_; }

  // Adopts a connected, non-blocking TCP socket (closes it and throws if it cannot be
  // registered with the netpoller).
  static tcp_stream adopt(int fd);

 private:
  friend class tcp_listener;
  void reset() noexcept;

  int fd_ = -1;
  detail::poll_descriptor* pd_ = nullptr;
  std::atomic<std::int64_t> read_deadline_{INT64_MAX};
  std::atomic<std::int64_t> write_deadline_{INT64_MAX};
  // The last read returned less than asked: the socket was drained, so the next read waits for
  // readiness first instead of spending a syscall on EAGAIN.
  bool drained_ = false;
};

struct listen_options {
  int backlog = SOMAXCONN;
  // SO_REUSEPORT: several listeners (say one per worker or per process) share the port and the
  // kernel spreads connections over them.
  bool reuse_port = false;
  // SO_REUSEADDR, so a restarted server can bind while old connections linger in TIME_WAIT.
  bool reuse_address = true;
};

// A listening TCP socket.
class tcp_listener {
 public:
  tcp_listener() = default;
  tcp_listener(tcp_listener&& other) noexcept;
  tcp_listener& operator=(tcp_listener&& other) noexcept;
  ~tcp_listener();

  // Binds and listens: "127.0.0.1:0" picks a free port (see port()), "[::1]:0" for IPv6.
  static tcp_listener bind(std::string_view addr, const listen_options& opts = {});
  static tcp_listener bind(const address& addr, const listen_options& opts, std::error_code& ec);

  // Waits for the next connection. When the process is out of file descriptors (EMFILE,
  // ENFILE) or kernel memory, accept backs off (5 ms, doubling to 1 s) and retries, as Go's
  // net/http does: the server keeps serving once descriptors free up and never spins.
  tcp_stream accept();
  tcp_stream accept(std::error_code& ec);

  // Bounds accept (errc::timed_out once passed); also wakes an accept already waiting.
  void set_deadline(clock::time_point t) noexcept;
  void close() noexcept;

  std::uint16_t port() const;
  address local_address() const;
  bool is_open() const noexcept { return pd_ != nullptr; }
  int native_handle() const noexcept { return fd_; }
  // How many times accept backed off for lack of descriptors or memory.
  std::uint64_t resource_backoffs() const noexcept {
    return backoffs_.load(std::memory_order_relaxed);
  }

 private:
  void reset() noexcept;

  int fd_ = -1;
  detail::poll_descriptor* pd_ = nullptr;
  std::atomic<std::int64_t> deadline_{INT64_MAX};
  std::atomic<std::uint64_t> backoffs_{0};
};

}  // namespace weft::net
