// wait_group, mutex and condition_variable on top of the waiter protocol.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "chaos.hpp"
#include "weft/condition_variable.hpp"
#include "weft/mutex.hpp"
#include "weft/wait_group.hpp"

namespace weft {

using detail::wake_reason;

void wait_group::add(std::int64_t n) {
  if (n > INT32_MAX || n < -static_cast<std::int64_t>(INT32_MAX))
    throw std::logic_error("weft::wait_group: add of more than 2^31 - 1 at once");
  const std::uint64_t delta = static_cast<std::uint64_t>(n) << 32;
  std::uint64_t s = state_.fetch_add(delta, std::memory_order_acq_rel) + delta;
  const std::int64_t counter = static_cast<std::int32_t>(s >> 32);
  const std::int64_t before = counter - n;
  if (counter < 0 || (n > 0 && counter < before)) {
    state_.fetch_sub(delta, std::memory_order_acq_rel);
    throw std::logic_error(
        counter < 0 ? "weft::wait_group: negative counter (done() called more than add())"
                    : "weft::wait_group: counter overflow");
  }
  auto waiting = static_cast<std::uint32_t>(s);
  if (counter != 0 || waiting == 0 || n == 0) return;
  // We released the counter with `waiting` registered waiters: reset and wake exactly them.
  // A waiter may have registered but not queued itself yet: keep collecting until all have.
  state_.store(0, std::memory_order_release);
  while (waiting) {
    detail::waiter* chain = nullptr;
    lock_.lock();
    while (detail::waiter* w = waiters_.pop_front()) {
      --waiting;
      if (!w->claim_pending()) continue;  // shutdown is unwinding it
      w->next = chain;
      chain = w;
    }
    waiting -= std::min(waiting, departed_);  // left (shutdown) before we could pop them
    departed_ = 0;
    lock_.unlock();
    detail::release_claimed(chain, wake_reason::notified);
    if (waiting) {
      unsigned spins = 0;
      detail::spin_pause(spins);
    }
  }
}

void wait_group::wait() {
  std::uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((s >> 32) == 0) return;
    if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) break;
  }
  detail::waiter w;
  lock_.lock();
  waiters_.push_back(w);
  if (detail::park(w, &lock_, detail::no_deadline, detail::wait_reason::wait_group) ==
      wake_reason::notified)
    return;
  // Cancelled: take ourselves out (and off the count a releaser would wait for) and unwind.
  depart(w);
  detail::throw_cancelled();
}

void wait_group::depart(detail::waiter& w) noexcept {
  lock_.lock();
  if (w.linked) {
    waiters_.remove(w);
    ++departed_;
  }
  lock_.unlock();
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
  if (!enqueue_or_take(w)) return;
  // unlock() hands the lock over directly: once notified, we own it.
  if (detail::park(w, &lock_, detail::no_deadline, detail::wait_reason::mutex) ==
      wake_reason::notified)
    return;
  leave_queue(w);
  detail::throw_cancelled();
}

bool mutex::enqueue_or_take(detail::waiter& w) noexcept {
  lock_.lock();
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (!(s & locked_bit)) {
      if (state_.compare_exchange_weak(s, s | locked_bit, std::memory_order_acquire)) {
        lock_.unlock();
        return false;
      }
    } else if (state_.compare_exchange_weak(s, s | waiters_bit, std::memory_order_relaxed)) {
      break;
    }
  }
  waiters_.push_back(w);
  return true;
}

void mutex::leave_queue(detail::waiter& w) noexcept {
  lock_.lock();
  waiters_.remove(w);
  if (waiters_.empty()) state_.fetch_and(~waiters_bit, std::memory_order_relaxed);
  lock_.unlock();
}

void mutex::unlock() {
  std::uint32_t expected = locked_bit;
  if (state_.compare_exchange_strong(expected, 0, std::memory_order_release)) return;
  if (!(expected & locked_bit))
    throw std::logic_error("weft::mutex::unlock: the mutex is not locked");
  lock_.lock();
  detail::waiter* next_owner = waiters_.claim_one();
  // With a successor the lock stays held (ownership passes to it); else it is free.
  state_.store(next_owner ? (waiters_.empty() ? locked_bit : locked_bit | waiters_bit) : 0,
               std::memory_order_release);
  lock_.unlock();
  detail::release_claimed(next_owner, wake_reason::notified);
}

void condition_variable::notify_one() noexcept {
  lock_.lock();
  detail::waiter* w = waiters_.claim_one();
  lock_.unlock();
  detail::release_claimed(w, wake_reason::notified);
}

void condition_variable::notify_all() noexcept {
  lock_.lock();
  detail::waiter* chain = waiters_.claim_all();
  lock_.unlock();
  detail::release_claimed(chain, wake_reason::notified);
}

void condition_variable::enqueue(detail::waiter& w) {
  lock_.lock();
  waiters_.push_back(w);
}

bool condition_variable::park_enqueued(detail::waiter& w, std::int64_t deadline) {
  // Chaos: a spurious wake-up (a timeout of our own, reported as a wake), as std allows.
  const std::int64_t own_deadline =
      detail::chaos::chance(50) ? std::min(deadline, detail::now_ns() + 20'000) : deadline;
  const wake_reason why =
      detail::park(w, &lock_, own_deadline, detail::wait_reason::condition_variable);
  if (why == wake_reason::notified) return true;
  lock_.lock();
  waiters_.remove(w);
  lock_.unlock();
  if (why == wake_reason::cancelled) detail::throw_cancelled();
  return own_deadline != deadline && detail::now_ns() < deadline;  // spurious, not timed out
}

}  // namespace weft
