// weft::wait_group: Go's sync.WaitGroup. Waits for a counted set of tasks to finish; works from
// green threads and plain OS threads alike.
#pragma once

#include <atomic>
#include <cstdint>

#include "weft/detail/waiter.hpp"

namespace weft {

class wait_group {
 public:
  wait_group() = default;
  explicit wait_group(std::int64_t initial) : count_(initial) {}
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;

  // Adds `n` (may be negative) to the counter. Throws std::logic_error if it would go negative.
  void add(std::int64_t n = 1);
  void done() { add(-1); }
  // Blocks until the counter is zero.
  void wait();
  std::int64_t count() const noexcept { return count_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::int64_t> count_{0};
  detail::spinlock lock_;
  detail::waiter_list waiters_;
};

}  // namespace weft
