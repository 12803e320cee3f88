// weft::net: TCP for green threads. Calls block the calling green thread only: a green thread
// waiting on a socket is parked on the runtime's epoll netpoller and holds no worker. From a
// plain OS thread the same calls block that thread. Errors are std::system_error; every call
// that can fail also has an overload taking std::error_code& that does not throw (as asio).
//
//   auto listener = weft::net::tcp_listener::bind("127.0.0.1:8080");
//   weft::go([s = listener.accept()]() mutable {        // parks until a client connects
//     std::byte buf[4096];
//     for (std::size_t n; (n = s.read(buf)) != 0;) s.write_all(std::span(buf, n));
//   });
//   auto c = weft::net::tcp_stream::connect("localhost:8080", std::chrono::seconds(5));
//   c.set_read_timeout(std::chrono::seconds(1));         // Go's deadlines
//
// In a stackless weft::task, co_await the async_ forms (async_accept, async_connect,
// async_read, async_write_all, async_resolve): same results and errors, the task parks instead.
//   weft::task<void> echo(weft::net::tcp_stream s) {
//     char buf[4096];
//     for (std::size_t n; (n = co_await s.async_read(std::span(buf))) != 0;)
//       co_await s.async_write_all(std::string_view(buf, n));
//   }
//   weft::go(echo(co_await listener.async_accept()));
//
// UDP is in weft/udp.hpp, Unix sockets in weft/unix_socket.hpp, pipes and foreign descriptors
// in weft/io.hpp, name resolution below (resolve).
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
#include <utility>
#include <vector>

#include "weft/io.hpp"

namespace weft::net {

using io::clock;
using io::no_deadline;

// An IPv4 or IPv6 socket address.
class address {
 public:
  address() = default;
  // "127.0.0.1:8080", "[::1]:8080", "localhost:8080", ":8080" (every IPv4 interface),
  // "[::]:8080" (every interface). Other host names are resolved through resolve() (the first
  // address it gives), on the blocking pool.
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
// A connected TCP socket: an io::stream (read, write_all, close, deadlines) that can also
// connect, half-close and name its ends. One green thread may read while another writes.
// Move-only; the destructor closes it. TCP_NODELAY is on by default, as in Go:
// request/response traffic should not wait for Nagle.
class tcp_stream : public io::stream {
 public:
  tcp_stream() = default;

  // Connects to `addr`; a zero timeout waits as long as the kernel does. A refused connection
  // gives errc::connection_refused, a timeout errc::timed_out. A host name is resolved first
  // (resolve(), on the blocking pool) and each of its addresses tried in turn until one
  // connects; the timeout bounds the whole.
  static tcp_stream connect(std::string_view addr, std::chrono::nanoseconds timeout = {});
  static tcp_stream connect(std::string_view addr, std::chrono::nanoseconds timeout,
                            std::error_code& ec);
  static tcp_stream connect(const address& addr, std::chrono::nanoseconds timeout = {});
  static tcp_stream connect(const address& addr, std::chrono::nanoseconds timeout,
                            std::error_code& ec);
  // connect for a weft::task: co_await it. A host name is resolved as async_resolve does.
  static task<tcp_stream> async_connect(std::string addr, std::chrono::nanoseconds timeout = {});
  static task<tcp_stream> async_connect(std::string addr, std::chrono::nanoseconds timeout,
                                        std::error_code& ec);
  static task<tcp_stream> async_connect(address addr, std::chrono::nanoseconds timeout = {});
  static task<tcp_stream> async_connect(address addr, std::chrono::nanoseconds timeout,
                                        std::error_code& ec);

  // Half-close: shutdown(write) sends FIN; the peer reads end of stream, and can still write.
  void shutdown(shutdown_how how = shutdown_how::write);

  void set_nodelay(bool on);
  address local_address() const;
  address peer_address() const;

  // Adopts a connected, non-blocking TCP socket (closes it and throws if it cannot be
  // registered with the netpoller).
  static tcp_stream adopt(int fd);

 private:
  static tcp_stream connect_before(const address& addr, std::int64_t deadline, std::error_code& ec);
  static task<tcp_stream> async_connect_before(address addr, std::int64_t deadline,
                                               std::error_code& ec);
  static task<tcp_stream> async_connect_host(std::string addr, std::chrono::nanoseconds timeout,
                                             std::error_code* ec);
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
class tcp_listener : private detail::pollable {
 public:
  tcp_listener() = default;
  tcp_listener(tcp_listener&& other) noexcept
      : pollable(std::move(other)), backoffs_(other.backoffs_.load()) {}
  tcp_listener& operator=(tcp_listener&& other) noexcept {
    pollable::operator=(std::move(other));
    backoffs_.store(other.backoffs_.load());
    return *this;
  }

  // Binds and listens: "127.0.0.1:0" picks a free port (see port()), "[::1]:0" for IPv6.
  static tcp_listener bind(std::string_view addr, const listen_options& opts = {});
  static tcp_listener bind(const address& addr, const listen_options& opts, std::error_code& ec);

  // Waits for the next connection. When the process is out of file descriptors (EMFILE,
  // ENFILE) or kernel memory, accept backs off (5 ms, doubling to 1 s) and retries, as Go's
  // net/http does: the server keeps serving once descriptors free up and never spins.
  tcp_stream accept();
  tcp_stream accept(std::error_code& ec);
  // accept for a weft::task: co_await it.
  task<tcp_stream> async_accept() { return accept_task(nullptr); }
  task<tcp_stream> async_accept(std::error_code& ec) { return accept_task(&ec); }

  // Bounds accept (errc::timed_out once passed); also wakes an accept already waiting.
  void set_deadline(clock::time_point t) noexcept { set_read_deadline(t); }
  using detail::pollable::close;
  using detail::pollable::is_open;
  using detail::pollable::native_handle;

  std::uint16_t port() const;
  address local_address() const;
  // How many times accept backed off for lack of descriptors or memory.
  std::uint64_t resource_backoffs() const noexcept {
    return backoffs_.load(std::memory_order_relaxed);
  }

 private:
  task<tcp_stream> accept_task(std::error_code* ec);
  std::atomic<std::uint64_t> backoffs_{0};
};

// Resolves a host name (or numeric address) to its addresses, IPv4 and IPv6, in the order
// getaddrinfo prefers. The lookup runs on the blocking pool, never on a worker; after `timeout`
// the caller gets errc::timed_out while the lookup finishes on its own. A name that does not
// exist gives an error of the "getaddrinfo" category (EAI_NONAME).
std::vector<address> resolve(std::string_view host, std::uint16_t port,
                             std::chrono::nanoseconds timeout = std::chrono::seconds(10));
std::vector<address> resolve(std::string_view host, std::uint16_t port,
                             std::chrono::nanoseconds timeout, std::error_code& ec);
// resolve for a weft::task: co_await it.
task<std::vector<address>> async_resolve(
    std::string host, std::uint16_t port,
    std::chrono::nanoseconds timeout = std::chrono::seconds(10));
task<std::vector<address>> async_resolve(std::string host, std::uint16_t port,
                                         std::chrono::nanoseconds timeout, std::error_code& ec);

}  // namespace weft::net
