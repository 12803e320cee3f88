// Parking and waking: the waiter protocol shared by every blocking primitive.
#include <sched.h>
#include <time.h>

#include <thread>

#include "futex.hpp"
#include "scheduler.hpp"
#include "weft/detail/event.hpp"
#include "weft/detail/waiter.hpp"

namespace weft::detail {

std::int64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void spin_pause(unsigned& spins) noexcept {
  if (++spins < 64) {
    __builtin_ia32_pause();
  } else {
    sched_yield();
  }
}

void waiter_list::push_back(waiter& w) noexcept {
  w.next = nullptr;
  w.prev = tail_;
  if (tail_)
    tail_->next = &w;
  else
    head_ = &w;
  tail_ = &w;
  w.linked = true;
}

waiter* waiter_list::pop_front() noexcept {
  waiter* w = head_;
  if (w) remove(*w);
  return w;
}

void waiter_list::remove(waiter& w) noexcept {
  if (!w.linked) return;
  if (w.prev)
    w.prev->next = w.next;
  else
    head_ = w.next;
  if (w.next)
    w.next->prev = w.prev;
  else
    tail_ = w.prev;
  w.prev = w.next = nullptr;
  w.linked = false;
}

green_thread* wake_claimed(waiter& w) noexcept {
  if (green_thread* g = w.thread) return g;
  futex_wake(&w.state, 1);
  return nullptr;
}

green_thread* waiter_list::wake_one(wake_reason why, bool& woke) noexcept {
  while (waiter* w = pop_front()) {
    if (w->claim(why)) {
      woke = true;
      return wake_claimed(*w);
    }
  }
  woke = false;
  return nullptr;
}

green_thread* waiter_list::wake_all(wake_reason why) noexcept {
  green_thread* chain = nullptr;
  while (waiter* w = pop_front()) {
    if (!w->claim(why)) continue;
    if (green_thread* g = wake_claimed(*w)) {
      g->next = chain;
      chain = g;
    }
  }
  return chain;
}

void ready(green_thread* g) noexcept {
  if (!g) return;
  worker* w = current_worker();
  g->sched->make_runnable(g, w, w && w->current != nullptr);
}

void ready_chain(green_thread* chain) noexcept {
  while (chain) {
    green_thread* next = chain->next;
    ready(chain);
    chain = next;
  }
}

bool spinning_may_help() noexcept {
  green_thread* g = current_green();
  return !g || !g->sched->single();
}

void throw_forced_unwind() {
  throw forced_unwind{};
}

namespace {

// The runtime is ending: a green thread asked to unwind must not start a new wait.
bool must_unwind(green_thread* g) noexcept {
  if (!g->cancel_requested || g->unwinding) return false;
  g->unwinding = true;
  return true;
}

wake_reason park_os_thread(waiter& w, spinlock* held, std::int64_t deadline) {
  if (held) held->unlock();
  for (;;) {
    const std::uint32_t s = w.state.load(std::memory_order_acquire);
    if (s != 0) return static_cast<wake_reason>(s);
    if (deadline != no_deadline && now_ns() >= deadline) {
      if (w.claim(wake_reason::timed_out)) return wake_reason::timed_out;
      continue;
    }
    futex_wait(&w.state, 0, deadline);
  }
}

}  // namespace

wake_reason park(waiter& w, spinlock* held, std::int64_t deadline) {
  green_thread* g = current_green();
  if (!g) return park_os_thread(w, held, deadline);
  if (must_unwind(g) || (deadline != no_deadline && deadline <= now_ns())) {
    // Nobody can claim w while we hold `held` (or, without a lock, nobody knows of it yet).
    const wake_reason why = g->unwinding ? wake_reason::cancelled : wake_reason::timed_out;
    w.claim(why);
    if (held) held->unlock();
    return w.reason();
  }
  w.thread = g;
  g->parked_on = &w;
  g->park_lock = held;
  g->timer.when = deadline;
  g->timer.target = &w;
  switch_out(g, switch_reason::park);
  g->parked_on = nullptr;
  if (deadline != no_deadline) {
    timer_heap::cancel(g->timer);
    g->timer.when = no_deadline;
  }
  const wake_reason why = w.reason();
  if (why == wake_reason::cancelled) g->unwinding = true;
  return why;
}

void yield_now() {
  green_thread* g = current_green();
  if (!g) {
    std::this_thread::yield();
    return;
  }
  if (must_unwind(g)) throw_forced_unwind();
  if (!g->sched->yield_to_next(*g->running_on, g)) switch_out(g, switch_reason::yield);
}

void coop_point() {
  green_thread* g = current_green();
  if (!g || --g->budget != 0) return;
  worker* w = g->running_on;
  w->forced_yields.store(w->forced_yields.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
  yield_now();
}

void sleep_until_ns(std::int64_t deadline) {
  waiter w;
  const wake_reason why = park(w, nullptr, deadline);
  if (why == wake_reason::cancelled) throw_forced_unwind();
}

void event::set() noexcept {
  lock_.lock();
  set_.store(true, std::memory_order_release);
  green_thread* chain = waiters_.wake_all(wake_reason::notified);
  lock_.unlock();
  ready_chain(chain);
}

void event::wait() {
  if (is_set()) return;
  waiter w;
  lock_.lock();
  if (set_.load(std::memory_order_relaxed)) {
    lock_.unlock();
    return;
  }
  waiters_.push_back(w);
  if (park(w, &lock_) == wake_reason::notified) return;
  lock_.lock();
  waiters_.remove(w);
  lock_.unlock();
  throw_forced_unwind();
}

}  // namespace weft::detail
