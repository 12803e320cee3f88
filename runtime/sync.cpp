// wait_group, mutex and condition_variable on top of the waiter protocol.
#include <stdexcept>
#include <string>

#include "weft/condition_variable.hpp"
#include "weft/mutex.hpp"
#include "weft/wait_group.hpp"

namespace weft {

using detail::wake_reason;

void wait_group::add(std::int64_t n) {
  const std::int64_t before = count_.fetch_add(n, std::memory_order_acq_rel);
  const std::int64_t after = before + n;
  if (after < 0) {
    count_.fetch_sub(n, std::memory_order_acq_rel);
    throw std::logic_error("weft::wait_group: negative counter (done() called more than add())");
  }
  if (after != 0 || n == 0) return;
  lock_.lock();
  detail::green_thread* chain = waiters_.wake_all(wake_reason::notified);
  lock_.unlock();
  detail::ready_chain(chain);
}

void wait_group::wait() {
  if (count_.load(std::memory_order_acquire) == 0) return;
  detail::waiter w;
  lock_.lock();
  if (count_.load(std::memory_order_acquire) == 0) {
    lock_.unlock();
    return;
  }
  waiters_.push_back(w);
  if (detail::park(w, &lock_) == wake_reason::notified) return;
  lock_.lock();
  waiters_.remove(w);
  lock_.unlock();
  detail::throw_forced_unwind();
}

bool mutex::try_lock() noexcept {
  std::uint32_t expected = 0;
  return state_.compare_exchange_strong(expected, locked_bit, std::memory_order_acquire);
}

void mutex::lock() {
  if (try_lock()) {
    detail::coop_point();
    return;
  }
  // A short spin first where the holder may be running elsewhere: sections are usually brief.
  for (int i = detail::spinning_may_help() ? 0 : 32; i < 32; ++i) {
    __builtin_ia32_pause();
    if (state_.load(std::memory_order_relaxed) == 0 && try_lock()) return;
  }
  detail::waiter w;
  lock_.lock();
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (!(s & locked_bit)) {
      if (state_.compare_exchange_weak(s, s | locked_bit, std::memory_order_acquire)) {
        lock_.unlock();
        return;
      }
    } else if (state_.compare_exchange_weak(s, s | waiters_bit, std::memory_order_relaxed)) {
      break;
    }
  }
  waiters_.push_back(w);
  // unlock() hands the lock over directly: once notified, we own it.
  if (detail::park(w, &lock_) == wake_reason::notified) return;
  lock_.lock();
  waiters_.remove(w);
  if (waiters_.empty()) state_.fetch_and(~waiters_bit, std::memory_order_relaxed);
  lock_.unlock();
  detail::throw_forced_unwind();
}

void mutex::unlock() {
  std::uint32_t expected = locked_bit;
  if (state_.compare_exchange_strong(expected, 0, std::memory_order_release)) return;
  if (!(expected & locked_bit))
    throw std::logic_error("weft::mutex::unlock: the mutex is not locked");
  lock_.lock();
  bool woke = false;
  detail::green_thread* g = waiters_.wake_one(wake_reason::notified, woke);
  // With a successor the lock stays held (ownership passes to it); else it is free.
  state_.store(woke ? (waiters_.empty() ? locked_bit : locked_bit | waiters_bit) : 0,
               std::memory_order_release);
  lock_.unlock();
  detail::ready(g);
}

void condition_variable::notify_one() noexcept {
  lock_.lock();
  bool woke = false;
  detail::green_thread* g = waiters_.wake_one(wake_reason::notified, woke);
  lock_.unlock();
  detail::ready(g);
}

void condition_variable::notify_all() noexcept {
  lock_.lock();
  detail::green_thread* chain = waiters_.wake_all(wake_reason::notified);
  lock_.unlock();
  detail::ready_chain(chain);
}

void condition_variable::enqueue(detail::waiter& w) {
  lock_.lock();
  waiters_.push_back(w);
}

bool condition_variable::park_enqueued(detail::waiter& w, std::int64_t deadline) {
  const wake_reason why = detail::park(w, &lock_, deadline);
  if (why == wake_reason::notified) return true;
  lock_.lock();
  waiters_.remove(w);
  lock_.unlock();
  if (why == wake_reason::cancelled) detail::throw_forced_unwind();
  return false;
}

}  // namespace weft
