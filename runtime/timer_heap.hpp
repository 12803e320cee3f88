// A per-worker 4-ary min-heap of timers (Go's timer heap). Any worker may fire or remove
// entries; each heap has its own lock. `next_deadline` lets others peek without the lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "weft/detail/spinlock.hpp"
#include "weft/detail/waiter.hpp"

namespace weft::detail {

class timer_heap;

struct timer_node {
  std::int64_t when = no_deadline;
  waiter* target = nullptr;    // claimed with `timed_out` when the timer fires
  timer_heap* heap = nullptr;  // where it is queued; null when not queued
  std::int32_t index = -1;
};

class timer_heap {
 public:
  void insert(timer_node& t);
  // Removes `t` if still queued (it may have fired). Safe from any thread.
  static void cancel(timer_node& t);
  // Fires due timers: each claimed waiter is appended to `out` (its thread must be readied by
  // the caller). Returns how many were claimed.
  template <class Out>
  std::size_t fire_due(std::int64_t now, Out&& out) {
    if (next_deadline_.load(std::memory_order_acquire) > now) return 0;
    std::size_t n = 0;
    lock_.lock();
    while (!heap_.empty() && heap_[0]->when <= now) {
      timer_node* t = heap_[0];
      remove_at(0);
      // Claim under the lock: the waiter's owner removes its timer under this same lock before
      // it can return, so the waiter is still alive here.
      if (t->target->claim(wake_reason::timed_out)) {
        out(t->target);
        ++n;
      }
    }
    lock_.unlock();
    return n;
  }
  std::int64_t next_deadline() const noexcept {
    return next_deadline_.load(std::memory_order_acquire);
  }
  std::size_t size_unlocked() const noexcept { return heap_.size(); }

 private:
  void remove_at(std::size_t i);
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);
  void place(std::size_t i, timer_node* t) {
    heap_[i] = t;
    t->index = static_cast<std::int32_t>(i);
  }
  void publish() {
    next_deadline_.store(heap_.empty() ? no_deadline : heap_[0]->when, std::memory_order_release);
  }

  spinlock lock_;
  std::vector<timer_node*> heap_;
  std::atomic<std::int64_t> next_deadline_{no_deadline};
};

}  // namespace weft::detail
