// weft::wait_group: Go's sync.WaitGroup. Waits for a counted set of tasks to finish; works from
// green threads and plain OS threads alike.
//
//   weft::wait_group wg;
//   for (auto& job : jobs) {
//     wg.add(1);
//     weft::go([&] { run(job); wg.done(); });
//   }
//   wg.wait();                                   // parks until every done()
#pragma once

#include <atomic>
#include <cstdint>

#include "weft/detail/waiter.hpp"

namespace weft {

class wait_group {
 public:
  wait_group() = default;
  explicit wait_group(std::int64_t initial) { add(initial); }
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;

  // Adds `n` (may be negative) to the counter. Throws std::logic_error if it would go negative
  // or beyond 2^31 - 1.
  void add(std::int64_t n = 1);
  void done() { add(-1); }
  // Blocks until the counter is zero (cancellable: throws weft::cancelled). The wait_group may
  // be destroyed as soon as wait returns: the done() that released it touches nothing of it
  // afterwards.
  void wait();
  std::int64_t count() const noexcept {
    return static_cast<std::int32_t>(state_.load(std::memory_order_acquire) >> 32);
  }

 private:
  // Counter in the high half, registered waiters in the low half (as Go's WaitGroup): the done()
  // reaching zero touches the rest of the object only if someone waits, and waiters cannot
  // leave until it has finished with it.
  std::atomic<std::uint64_t> state_{0};
  detail::spinlock lock_;
  detail::waiter_list waiters_;
  std::uint32_t departed_ = 0;  // waiters unwound at shutdown before a release (under lock_)
};

}  // namespace weft
