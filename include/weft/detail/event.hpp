// Internal: a one-shot completion that any number of green or OS threads can wait for.
#pragma once

#include <atomic>

#include "weft/detail/waiter.hpp"

namespace weft::detail {

class event {
 public:
  bool is_set() const noexcept { return set_.load(std::memory_order_acquire); }
  // Sets it; `clear` (if any) is nulled under the same lock, so that whoever reads it under
  // state_lock() knows the setter has not passed this point.
  void set(green_thread** clear = nullptr) noexcept;
  void wait();  // returns once set; cancellable (throws weft::cancelled)
  spinlock& state_lock() noexcept { return lock_; }

 private:
  std::atomic<bool> set_{false};
  spinlock lock_;
  waiter_list waiters_;
};

}  // namespace weft::detail
