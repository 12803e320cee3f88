// Waiting for a socket to become readable or writable: green threads park on the netpoller,
// plain OS threads block in poll(2).
#pragma once

#include <coroutine>
#include <string>
#include <system_error>

#include "poller.hpp"

namespace weft::detail {

// Waits until `dir` may make progress on `pd`. `cancelled` is returned for a cancellation
// request (the caller reports std::errc::operation_canceled); at the end of weft::run it throws
// weft::cancelled instead, so the green thread unwinds.
io_wait_result wait_io(poll_descriptor* pd, io_direction dir, std::int64_t deadline);

// The same wait for a stackless task (co_await it): netpoller::wait cut where a green thread
// would park. Its result is wait_io's; at the end of weft::run it throws weft::cancelled.
class io_ready_awaiter {
 public:
  io_ready_awaiter(poll_descriptor* pd, io_direction dir, std::int64_t deadline) noexcept
      : pd_(pd), dir_(dir), deadline_(deadline) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  io_wait_result await_resume();

 private:
  poll_descriptor* pd_;
  io_direction dir_;
  bool decided_ = false;  // await_suspend knew the result without waiting
  io_wait_result result_ = io_wait_result::ready;
  std::int64_t deadline_;
  waiter w_;
  task_park park_;
};

// The error a failed wait reports.
std::error_code wait_error(io_wait_result r) noexcept;
// What the throwing overloads throw for `ec`: weft::cancelled for operation_canceled (a
// cancelled wait), else std::system_error.
[[noreturn]] void throw_io_error(const std::error_code& ec, const std::string& what);

// RAII for one operation on a descriptor: the fd stays open until it ends.
class io_operation {
 public:
  explicit io_operation(poll_descriptor* pd) noexcept : pd_(pd && pd->begin_op() ? pd : nullptr) {}
  ~io_operation() {
    if (pd_) pd_->end_op();
  }
  io_operation(const io_operation&) = delete;
  io_operation& operator=(const io_operation&) = delete;
  explicit operator bool() const noexcept { return pd_ != nullptr; }

 private:
  poll_descriptor* pd_;
};

// After a non-blocking connect's socket became writable: true when the handshake is over (`ec`
// says how it ended), false on a spurious wake-up (wait again).
bool connect_settled(int fd, std::error_code& ec) noexcept;

inline std::error_code closed_error() noexcept {
  return std::make_error_code(std::errc::bad_file_descriptor);
}

}  // namespace weft::detail
