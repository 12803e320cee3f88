// Waiting for a socket to become readable or writable: green threads park on the netpoller,
// plain OS threads block in poll(2).
#pragma once

#include <system_error>

#include "poller.hpp"

namespace weft::detail {

// Waits until `dir` may make progress on `pd`. `cancelled` (the runtime is ending) never
// returns: it throws forced_unwind so the green thread unwinds.
io_wait_result wait_io(poll_descriptor* pd, io_direction dir, std::int64_t deadline);

// The error a failed wait reports.
std::error_code wait_error(io_wait_result r) noexcept;

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

inline std::error_code closed_error() noexcept {
  return std::make_error_code(std::errc::bad_file_descriptor);
}

}  // namespace weft::detail
