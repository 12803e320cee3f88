// weft::net Unix domain sockets: streams (with descriptor passing), listeners and datagrams,
// for sidecars, local databases and talking to a parent process.
//
// A path names a socket in the file system; one starting with '@' is a Linux abstract name
// ("@weft-demo"), which lives only while a socket holds it and never leaves a file behind.
//
//   auto l = weft::net::unix_listener::bind("/run/app.sock");   // removed again by close()
//   weft::go([&] {
//     auto s = l.accept();
//     char buf[256];
//     std::size_t n = s.read(std::span(buf));
//     s.write_all(std::string_view(buf, n));
//   });
//   auto c = weft::net::unix_stream::connect("/run/app.sock");
//   c.write_all("hello");
//   c.send_fds("f", std::array{some_fd});                 // the peer gets its own copy of some_fd
//
// Every call that can fail has a std::error_code overload that does not throw. Waits are
// cancellable (weft/cancel.hpp).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "weft/io.hpp"
#include "weft/net.hpp"

namespace weft::net {

// A connected Unix stream socket: an io::stream (read, write_all, close, deadlines) that can
// also half-close, pass descriptors and name its peer's credentials.
class unix_stream : public io::stream {
 public:
  unix_stream() = default;

  // Connects to the listener at `path`. errc::connection_refused when nobody listens there,
  // errc::no_such_file_or_directory when no socket has that path; a full backlog gives
  // errc::resource_unavailable_try_again at once, as in Go.
  static unix_stream connect(std::string_view path);
  static unix_stream connect(std::string_view path, std::error_code& ec);
  // Two connected, unnamed streams (socketpair).
  static std::pair<unix_stream, unix_stream> pair();

  void shutdown(shutdown_how how = shutdown_how::write);

  // Writes all of `data` (at least one byte) with `fds` attached to its first byte (SCM_RIGHTS,
  // at most 253). The kernel duplicates the descriptors: the caller still owns `fds`.
  void send_fds(std::span<const std::byte> data, std::span<const int> fds);
  std::size_t send_fds(std::span<const std::byte> data, std::span<const int> fds,
                       std::error_code& ec);
  void send_fds(std::string_view text, std::span<const int> fds) {
    send_fds(std::as_bytes(std::span(text)), fds);
  }
  // Reads like read(), and appends to `fds` the descriptors that came with these bytes
  // (close-on-exec; the caller owns and closes them). Descriptors the kernel had to drop for
  // lack of room fail the call with errc::message_size, never silently.
  std::size_t recv_fds(std::span<std::byte> buffer, std::vector<int>& fds);
  std::size_t recv_fds(std::span<std::byte> buffer, std::vector<int>& fds, std::error_code& ec);

  // The peer process's pid, uid and gid when it connected (SO_PEERCRED).
  struct credentials {
    pid_t pid;
    uid_t uid;
    gid_t gid;
  };
  credentials peer_credentials() const;
  std::string peer_path() const;  // the peer's bound name; empty if it had none

 private:
  friend class unix_listener;
  static unix_stream adopt(int fd, std::error_code& ec);
};

// A listening Unix stream socket. A listener bound to a file-system path removes that file when
// it closes (as Go does); an existing file at the path fails bind with errc::address_in_use.
class unix_listener : private detail::pollable {
 public:
  unix_listener() = default;
  unix_listener(unix_listener&& other) noexcept;
  unix_listener& operator=(unix_listener&& other) noexcept;
  ~unix_listener() { close(); }

  static unix_listener bind(std::string_view path, int backlog = SOMAXCONN);
  static unix_listener bind(std::string_view path, int backlog, std::error_code& ec);

  // Waits for the next connection; backs off while descriptors run out, as tcp_listener does.
  unix_stream accept();
  unix_stream accept(std::error_code& ec);

  // Bounds accept (errc::timed_out once passed); also wakes an accept already waiting.
  void set_deadline(clock::time_point t) noexcept { set_read_deadline(t); }
  void close() noexcept;
  using detail::pollable::is_open;
  using detail::pollable::native_handle;
  const std::string& path() const noexcept { return path_; }
  std::uint64_t resource_backoffs() const noexcept {
    return backoffs_.load(std::memory_order_relaxed);
  }

 private:
  std::string path_;
  std::atomic<std::uint64_t> backoffs_{0};
};

// A Unix datagram socket: each send is one message, delivered whole and in order (the kernel
// never drops one on a local socket; a full receiver makes the sender wait).
class unix_datagram : private detail::pollable {
 public:
  unix_datagram() = default;

  // Bound to `path` (to receive from anyone); unbound (to send only, or after connect).
  static unix_datagram bind(std::string_view path);
  static unix_datagram bind(std::string_view path, std::error_code& ec);
  static unix_datagram unbound();
  // Connected to the socket bound at `path`.
  static unix_datagram connect(std::string_view path);
  static unix_datagram connect(std::string_view path, std::error_code& ec);
  // Two connected, unnamed sockets (socketpair).
  static std::pair<unix_datagram, unix_datagram> pair();

  std::size_t send_to(std::span<const std::byte> data, std::string_view path);
  std::size_t send_to(std::span<const std::byte> data, std::string_view path, std::error_code& ec);
  // One message, and the sender's bound name (empty if it has none). A message longer than
  // the buffer fails with errc::message_size.
  std::size_t recv_from(std::span<std::byte> buffer, std::string& from);
  std::size_t recv_from(std::span<std::byte> buffer, std::string& from, std::error_code& ec);
  std::size_t send(std::span<const std::byte> data);
  std::size_t send(std::span<const std::byte> data, std::error_code& ec);
  std::size_t send(std::string_view text) { return send(std::as_bytes(std::span(text))); }
  std::size_t recv(std::span<std::byte> buffer);
  std::size_t recv(std::span<std::byte> buffer, std::error_code& ec);

  using detail::pollable::close;
  using detail::pollable::is_open;
  using detail::pollable::native_handle;
  using detail::pollable::set_deadline;
  using detail::pollable::set_read_deadline;
  using detail::pollable::set_read_timeout;
  using detail::pollable::set_write_deadline;
  using detail::pollable::set_write_timeout;

 private:
  static unix_datagram open(std::error_code& ec);
};

}  // namespace weft::net
