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
#include <coroutine>
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

  // wait() for a weft::task: `co_await wg.async_wait();`, cancellable as wait() is.
  class wait_awaiter {
   public:
    explicit wait_awaiter(wait_group& wg) noexcept : wg_(wg) {}
    bool await_ready() {
      std::uint64_t s = wg_.state_.load(std::memory_order_acquire);
      for (;;) {
        if ((s >> 32) == 0) return true;
        if (wg_.state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) break;
      }
      registered_ = true;  // counted as a waiter: a release now wakes us through the list
      wg_.lock_.lock();
      wg_.waiters_.push_back(w_);
      return false;  // locked: released once the task has suspended
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      park_.lock = &wg_.lock_;
      return detail::task_park_begin(park_, h.address(), w_, &park_.lock, 1, detail::no_deadline,
                                     detail::wait_reason::wait_group);
    }
    void await_resume() {
      if (!registered_) return;
      const detail::wake_reason why = park_.parked ? detail::task_park_end(park_, w_) : w_.reason();
      if (why == detail::wake_reason::notified) return;
      wg_.depart(w_);
      detail::throw_cancelled();
    }

   private:
    wait_group& wg_;
    detail::waiter w_;
    detail::task_park park_;
    bool registered_ = false;
  };
  wait_awaiter async_wait() noexcept { return wait_awaiter(*this); }

 private:
  // A cancelled waiter leaves: off the list, and off the count a releaser waits for.
  void depart(detail::waiter& w) noexcept;

  // Counter in the high half, registered waiters in the low half (as Go's WaitGroup): the done()
  // reaching zero touches the rest of the object only if someone waits, and waiters cannot
  // leave until it has finished with it.
  std::atomic<std::uint64_t> state_{0};
  detail::spinlock lock_;
  detail::waiter_list waiters_;
  std::uint32_t departed_ = 0;  // waiters unwound at shutdown before a release (under lock_)
};

}  // namespace weft
