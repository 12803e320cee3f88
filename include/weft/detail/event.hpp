// Internal: a one-shot completion that any number of green or OS threads can wait for.
#pragma once

#include <atomic>

#include "weft/detail/waiter.hpp"

namespace weft::detail {

class event {
 public:
  bool is_set() const noexcept { return set_.load(std::memory_order_acquire); }
  void set() noexcept;
  void wait();  // returns once set (may throw forced_unwind at shutdown)

 private:
  std::atomic<bool> set_{false};
  spinlock lock_;
  waiter_list waiters_;
};

}  // namespace weft::detail
