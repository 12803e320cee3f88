// Internal: a tiny test-and-test-and-set lock for the runtime's short critical sections
// (waiter lists, queues). Never held across a switch except through park(), which releases it
// only once the parked green thread is fully suspended.
#pragma once

#include <atomic>

namespace weft::detail {

void spin_pause(unsigned& spins) noexcept;  // pause, then sched_yield after a while

class spinlock {
 public:
  void lock() noexcept {
    unsigned spins = 0;
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) spin_pause(spins);
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail
