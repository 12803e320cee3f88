// weft::mutex: a mutual-exclusion lock that parks a green thread instead of blocking its worker.
// Meets the std Lockable requirements, so std::lock_guard, std::unique_lock and std::scoped_lock
// work; usable from plain OS threads too.
//
//   weft::mutex m;
//   std::map<int, int> shared;
//   weft::go([&] { std::lock_guard g(m); shared[1] = 2; });  // parks while another holds m
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>

#include "weft/detail/waiter.hpp"

namespace weft {

class mutex {
 public:
  mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  void lock();  // never cancelled (weft/cancel.hpp): cleanup code must be able to lock
  bool try_lock() noexcept;
  void unlock();

  // lock() for a weft::task: `co_await m.async_lock(); ... m.unlock();`. Never cancelled either
  // (only the end of weft::run unwinds it). The task owns the lock once the co_await returns.
  class lock_awaiter {
   public:
    explicit lock_awaiter(mutex& m) noexcept : m_(m) {}
    bool await_ready() noexcept {
      if (m_.try_lock()) return true;
      queued_ = m_.enqueue_or_take(w_);
      return !queued_;  // queued: m_.lock_ held until the task has suspended
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      park_.lock = &m_.lock_;
      return detail::task_park_begin(park_, h.address(), w_, &park_.lock, 1, detail::no_deadline,
                                     detail::wait_reason::mutex);
    }
    void await_resume() {
      if (!queued_) return;
      const detail::wake_reason why = park_.parked ? detail::task_park_end(park_, w_) : w_.reason();
      if (why == detail::wake_reason::notified) return;  // handed over: ours
      m_.leave_queue(w_);
      detail::throw_cancelled();
    }

   private:
    mutex& m_;
    detail::waiter w_;
    detail::task_park park_;
    bool queued_ = false;
  };
  lock_awaiter async_lock() noexcept { return lock_awaiter(*this); }

 private:
  // The slow path's first half: takes the lock if it is free now (false, lock_ released), or
  // queues `w` as a waiter (true, with lock_ still held for the park to release).
  bool enqueue_or_take(detail::waiter& w) noexcept;
  // A queued waiter that gives up (the end of weft::run).
  void leave_queue(detail::waiter& w) noexcept;

  // Bit 0: locked. Bit 1: waiters queued (unlock takes the slow path and hands over directly,
  // so a woken waiter owns the lock: no lost wake-ups, FIFO among the parked).
  static constexpr std::uint32_t locked_bit = 1, waiters_bit = 2;
  std::atomic<std::uint32_t> state_{0};
  detail::spinlock lock_;
  detail::waiter_list waiters_;
};

}  // namespace weft
