// weft::io: byte streams over any pollable descriptor (pipes, FIFOs, terminals, sockets), and
// fd_waiter, which parks a green thread until a descriptor the program owns is ready: the way to
// run a C library that keeps its own sockets (OpenSSL, libpq, libcurl, c-ares) on weft.
//
//   auto [r, w] = weft::io::pipe();
//   weft::go([w = std::move(w)]() mutable { w.write_all("ping\n"); });
//   char buf[16];
//   std::size_t n = r.read(std::span(buf));     // parks this green thread, not its worker
//   n = co_await r.async_read(std::span(buf));   // the same in a weft::task
//
//   weft::io::fd_waiter ready(ssl_socket_fd);    // the library's fd, left open on destruction
//   while (SSL_do_handshake(ssl) != 1)
//     if (SSL_get_error(ssl, -1) == SSL_ERROR_WANT_READ) ready.wait_readable();
//     else ready.wait_writable();
//
// Every wait has an async_ form for a stackless weft::task (weft/task.hpp) to co_await. It
// returns a task<...> that must be awaited at once (its buffer, and its error_code where it takes
// one, must outlive the await); results and errors are the blocking form's.
//
// Calls block the calling green thread only; from a plain OS thread they block that thread.
// Errors are std::system_error; every call that can fail has a std::error_code overload that
// does not throw. Waits are cancellable (weft/cancel.hpp). Regular files are always "ready" to
// the kernel's poll: use weft::fs for them.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

#include "weft/detail/pollable.hpp"
#include "weft/task.hpp"

namespace weft::io {

using clock = std::chrono::steady_clock;
// A deadline that never passes: the default, and how to clear one.
inline constexpr clock::time_point no_deadline = clock::time_point::max();

// A byte stream: one green thread may read while another writes; two concurrent reads (or
// writes) are a logic_error. Move-only; the destructor closes the descriptor.
class stream : public detail::pollable {
 public:
  stream() = default;

  // Takes ownership of `fd` (a pipe, FIFO, character device, terminal or stream socket), makes
  // it non-blocking and registers it. A regular file or directory gives
  // errc::operation_not_permitted (the kernel cannot poll it); `fd` is closed on any failure.
  // O_NONBLOCK is a property of the open file description: a terminal shared with other
  // processes (say fd 0) should be reopened first (open("/proc/self/fd/0")).
  static stream adopt(int fd);
  static stream adopt(int fd, std::error_code& ec);

  // Reads what is available (at least one byte, waiting if none is); 0 means end of stream (the
  // writer closed). A reset peer gives errc::connection_reset, a passed read deadline
  // errc::timed_out, a stream closed by this process errc::bad_file_descriptor.
  std::size_t read(std::span<std::byte> buffer);
  std::size_t read(std::span<std::byte> buffer, std::error_code& ec);
  std::size_t read(std::span<char> buffer) { return read(std::as_writable_bytes(buffer)); }
  std::size_t read(std::span<char> buffer, std::error_code& ec) {
    return read(std::as_writable_bytes(buffer), ec);
  }

  // Writes every byte, waiting for room as needed. The overload with `ec` returns how many bytes
  // were written before an error; a closed reader gives errc::broken_pipe and never SIGPIPE.
  void write_all(std::span<const std::byte> data);
  std::size_t write_all(std::span<const std::byte> data, std::error_code& ec);
  void write_all(std::string_view text) { write_all(std::as_bytes(std::span(text))); }
  std::size_t write_all(std::string_view text, std::error_code& ec) {
    return write_all(std::as_bytes(std::span(text)), ec);
  }

  // read and write_all for a weft::task: co_await them.
  task<std::size_t> async_read(std::span<std::byte> buffer) { return read_task(buffer, nullptr); }
  task<std::size_t> async_read(std::span<std::byte> buffer, std::error_code& ec) {
    return read_task(buffer, &ec);
  }
  task<std::size_t> async_read(std::span<char> buffer) {
    return read_task(std::as_writable_bytes(buffer), nullptr);
  }
  task<std::size_t> async_read(std::span<char> buffer, std::error_code& ec) {
    return read_task(std::as_writable_bytes(buffer), &ec);
  }
  // The no-error_code form returns the byte count too (all of `data`).
  task<std::size_t> async_write_all(std::span<const std::byte> data) {
    return write_task(data, nullptr);
  }
  task<std::size_t> async_write_all(std::span<const std::byte> data, std::error_code& ec) {
    return write_task(data, &ec);
  }
  task<std::size_t> async_write_all(std::string_view text) {
    return write_task(std::as_bytes(std::span(text)), nullptr);
  }
  task<std::size_t> async_write_all(std::string_view text, std::error_code& ec) {
    return write_task(std::as_bytes(std::span(text)), &ec);
  }

 protected:
  // Registers a connected, non-blocking stream socket: written with send(MSG_NOSIGNAL). Other
  // descriptors (attach_stream) are written with SIGPIPE blocked on the calling thread.
  void attach_socket(int fd, std::error_code& ec) noexcept;
  void attach_stream(int fd, std::error_code& ec) noexcept;

 private:
  // The async forms: `ec` null throws as the blocking form does.
  task<std::size_t> read_task(std::span<std::byte> buffer, std::error_code* ec);
  task<std::size_t> write_task(std::span<const std::byte> data, std::error_code* ec);
  ssize_t write_some(const std::byte* data, std::size_t size);

  bool socket_ = false;
  // The last read returned less than asked: the descriptor was drained, so the next read waits
  // for readiness first instead of spending a system call on EAGAIN.
  bool drained_ = false;
};

// A pipe: {read end, write end}, both non-blocking and close-on-exec.
std::pair<stream, stream> pipe();
std::pair<stream, stream> pipe(std::error_code& ec);

// Parks the calling green thread until a descriptor the program owns is readable or writable.
// The descriptor must be non-blocking (invalid_argument otherwise) and stays open when the
// waiter goes: close the waiter before the descriptor. Readiness is edge-triggered, as in Go's
// poller: wait only after a call on the descriptor failed with EAGAIN (an OpenSSL
// SSL_ERROR_WANT_READ/WRITE means exactly that), or the wait may sleep through data already
// there. A wait may also return spuriously; the caller retries its call either way.
class fd_waiter : private detail::pollable {
 public:
  fd_waiter() = default;
  explicit fd_waiter(int fd);
  fd_waiter(int fd, std::error_code& ec);

  // Waits until readable (writable), the deadline passes (errc::timed_out) or close() is called
  // (errc::bad_file_descriptor). One waiter per direction at a time.
  void wait_readable(clock::time_point deadline = no_deadline);
  void wait_readable(clock::time_point deadline, std::error_code& ec);
  void wait_writable(clock::time_point deadline = no_deadline);
  void wait_writable(clock::time_point deadline, std::error_code& ec);
  // The same with a timeout from now.
  void wait_readable(std::chrono::nanoseconds timeout) { wait_readable(clock::now() + timeout); }
  void wait_writable(std::chrono::nanoseconds timeout) { wait_writable(clock::now() + timeout); }
  // The same for a weft::task: co_await them.
  task<void> async_wait_readable(clock::time_point deadline = no_deadline);
  task<void> async_wait_readable(clock::time_point deadline, std::error_code& ec);
  task<void> async_wait_writable(clock::time_point deadline = no_deadline);
  task<void> async_wait_writable(clock::time_point deadline, std::error_code& ec);

  // Unregisters the descriptor (which stays open) and wakes any waiter. Idempotent.
  using detail::pollable::close;
  using detail::pollable::is_open;
  using detail::pollable::native_handle;
};

}  // namespace weft::io
