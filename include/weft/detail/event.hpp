// Internal: a one-shot completion that any number of green or OS threads can wait for.
#pragma once

#include <atomic>
#include <coroutine>

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

  // A task's wait for it: `co_await e.async_wait()`, cancellable as wait() is.
  class awaiter {
   public:
    explicit awaiter(event& e) noexcept : e_(e) {}
    bool await_ready() noexcept {
      if (e_.is_set()) return true;
      e_.lock_.lock();
      if (e_.set_.load(std::memory_order_relaxed)) {
        e_.lock_.unlock();
        return true;
      }
      e_.waiters_.push_back(w_);
      queued_ = true;
      return false;  // locked: released once the task has suspended
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      park_.lock = &e_.lock_;
      return task_park_begin(park_, h.address(), w_, &park_.lock, 1, no_deadline,
                             wait_reason::join);
    }
    void await_resume() {
      if (!queued_) return;  // it was set already
      const wake_reason why = park_.parked ? task_park_end(park_, w_) : w_.reason();
      if (why == wake_reason::notified) return;
      e_.lock_.lock();
      e_.waiters_.remove(w_);
      e_.lock_.unlock();
      throw_cancelled();
    }

   private:
    event& e_;
    waiter w_;
    task_park park_;
    bool queued_ = false;
  };
  awaiter async_wait() noexcept { return awaiter(*this); }

 private:
  std::atomic<bool> set_{false};
  spinlock lock_;
  waiter_list waiters_;
};

}  // namespace weft::detail
