// Stack overflow in a green thread: its guard page faults; a SIGSEGV/SIGBUS handler running on
// an alternate signal stack names the green thread and aborts, instead of a bare crash.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::detail {

// While alive on a worker thread: an alternate signal stack for it, and (process-wide, once)
// the handler. Faults that are not a green thread's guard page go to the previous handler.
class overflow_guard {
 public:
  overflow_guard();
  ~overflow_guard();
  overflow_guard(const overflow_guard&) = delete;
  overflow_guard& operator=(const overflow_guard&) = delete;

 private:
  void* alt_stack_ = nullptr;
  std::size_t alt_size_ = 0;
  bool installed_ = false;
};

}  // namespace weft::detail
