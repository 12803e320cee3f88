// A per-worker 4-ary min-heap of timers (Go's timer heap). Any worker may fire or remove
// entries; each heap has its own lock. `next_deadline` lets others peek without the lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "chaos.hpp"
#include "weft/detail/spinlock.hpp"
#include "weft/detail/waiter.hpp"

namespace weft::detail {

class timer_heap;

struct timer_node {
  std::int64_t when = no_deadline;
  waiter* target = nullptr;                // claimed with `timed_out` when the timer fires
  std::atomic<timer_heap*> heap{nullptr};  // where it is queued; null when not queued
  std::int32_t index = -1;
  timer_node* fire_next = nullptr;  // chains callback timers being fired
  // A callback timer (weft::after, weft::ticker) has no waiter: when due it is taken out of the
  // heap and `fire` runs after the heap's lock is released (it may take channel locks, and a
  // parking green thread takes a heap lock while it holds channel locks). It returns when to
  // fire again (no_deadline: never; it may then have freed the node). `discard` runs instead
  // if the runtime ends first.
  std::int64_t (*fire)(timer_node&, std::int64_t now) = nullptr;
  void (*discard)(timer_node&) = nullptr;
};

class timer_heap {
 public:
  void insert(timer_node& t);
  // Removes `t` if still queued (it may have fired). Safe from any thread. True if it removed it.
  static bool cancel(timer_node& t);
  // Fires due timers: each claimed waiter is appended to `out` (its thread must be readied by
  // the caller). Returns how many were claimed.
  template <class Out>
  std::size_t fire_due(std::int64_t now, Out&& out) {
    if (next_deadline_.load(std::memory_order_acquire) > now) return 0;
    std::size_t n = 0;
    timer_node* callbacks = nullptr;  // chained through `heap` while out of the heap
    lock_.lock();
    while (!heap_.empty() && heap_[0]->when <= now) {
      timer_node* t = heap_[0];
      if (t->fire) {
        remove_at(0);
        t->fire_next = callbacks;  // a callback timer is owned by the heap while it fires
        callbacks = t;
        continue;
      }
      // Claim first, then take the node out, and touch neither after: once out of the heap,
      // cancel() returns without this lock, and a green thread a sender woke meanwhile returns
      // and takes its waiter and timer node (both on its stack) with it.
      waiter* target = t->target;
      const bool won = target->claim(wake_reason::timed_out);
      chaos::spin();  // the owner, woken by someone else, waits on this lock meanwhile
      remove_at(0);
      if (won) {  // nobody else can wake it now: the waiter lives until `out` readies it
        out(target);
        ++n;
      }
    }
    lock_.unlock();
    while (callbacks) {
      timer_node* t = callbacks;
      callbacks = t->fire_next;
      const std::int64_t again = t->fire(*t, now);
      if (again != no_deadline) {
        t->when = again;
        insert(*t);
      }
    }
    return n;
  }
  std::int64_t next_deadline() const noexcept {
    return next_deadline_.load(std::memory_order_acquire);
  }
  std::size_t size_unlocked() const noexcept { return heap_.size(); }
  // When the runtime ends: empties the heap, discarding callback timers (waiters are gone).
  void drain() noexcept;

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
