// weft::condition_variable: std::condition_variable_any's interface for green threads (and OS
// threads). Works with any BasicLockable, e.g. std::unique_lock<weft::mutex>. Its waits are
// cancellable (weft/cancel.hpp): they take the lock back, then throw weft::cancelled. As with
// std, a wait may return without a notify (rarely): wait in a loop, or pass a predicate.
//
//   weft::mutex m;
//   weft::condition_variable cv;
//   bool ready = false;
//   weft::go([&] { { std::lock_guard g(m); ready = true; } cv.notify_one(); });
//   std::unique_lock lock(m);
//   cv.wait(lock, [&] { return ready; });        // parks, and releases m meanwhile
#pragma once

#include <chrono>
#include <condition_variable>
#include <utility>

#include "weft/detail/waiter.hpp"

namespace weft {

class mutex;
template <class T>
class task;

class condition_variable {
 public:
  condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  void notify_one() noexcept;
  void notify_all() noexcept;

  template <class Lock>
  void wait(Lock& lock) {
    wait_until_ns(lock, detail::no_deadline);
  }
  template <class Lock, class Pred>
  void wait(Lock& lock, Pred pred) {
    while (!pred()) wait(lock);
  }
  template <class Lock, class Clock, class Dur>
  std::cv_status wait_until(Lock& lock, const std::chrono::time_point<Clock, Dur>& tp) {
    return wait_until_ns(lock, detail::deadline_of(tp)) ? std::cv_status::no_timeout
                                                        : std::cv_status::timeout;
  }
  template <class Lock, class Clock, class Dur, class Pred>
  bool wait_until(Lock& lock, const std::chrono::time_point<Clock, Dur>& tp, Pred pred) {
    const std::int64_t deadline = detail::deadline_of(tp);
    while (!pred()) {
      if (!wait_until_ns(lock, deadline)) return pred();
    }
    return true;
  }
  template <class Lock, class Rep, class Period>
  std::cv_status wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& d) {
    return wait_until(lock, detail::clock::now() + std::chrono::ceil<detail::clock::duration>(d));
  }
  template <class Lock, class Rep, class Period, class Pred>
  bool wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& d, Pred pred) {
    return wait_until(lock, detail::clock::now() + std::chrono::ceil<detail::clock::duration>(d),
                      std::move(pred));
  }

  // wait() for a weft::task holding `m`: `co_await cv.async_wait(m);` releases m while it waits
  // and takes it back (m.async_lock()) before it returns. Cancellable as wait() is: m is taken
  // back, then weft::cancelled is thrown. Defined in weft/task.hpp.
  task<void> async_wait(mutex& m);

 private:
  // The waiting half of async_wait: queued under lock_, `m` unlocked, the task suspended; lock_
  // released once it has. True if notified.
  class release_and_wait;
  friend class release_and_wait;

  // Releases `lock`, waits, re-acquires it. False on timeout.
  template <class Lock>
  bool wait_until_ns(Lock& lock, std::int64_t deadline) {
    detail::waiter w;
    enqueue(w);
    lock.unlock();
    struct relock {
      Lock& l;
      ~relock() { l.lock(); }
    } guard{lock};
    return park_enqueued(w, deadline);
  }
  void enqueue(detail::waiter& w);                               // takes lock_, links w
  bool park_enqueued(detail::waiter& w, std::int64_t deadline);  // releases lock_ once parked

  detail::spinlock lock_;
  detail::waiter_list waiters_;
};

}  // namespace weft
