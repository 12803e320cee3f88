// weft::after and weft::ticker: callback timers on the scheduler's timer heaps that send on a
// channel when they fire.
#include <atomic>
#include <new>
#include <stdexcept>
#include <string>

#include "scheduler.hpp"
#include "weft/timer.hpp"

namespace weft {
namespace detail {
namespace {

using time_point = std::chrono::steady_clock::time_point;

time_point to_time_point(std::int64_t ns) {
  return time_point(std::chrono::duration_cast<time_point::duration>(std::chrono::nanoseconds(ns)));
}

scheduler& running_scheduler(const char* what) {
  if (worker* w = current_worker()) return *w->sched;
  if (scheduler* s = active_scheduler()) return *s;
  throw std::logic_error(std::string(what) + ": no runtime is running");
}

struct after_timer : timer_node {
  chan<time_point> ch;
};

std::int64_t fire_after(timer_node& n, std::int64_t now) {
  auto* t = static_cast<after_timer*>(&n);
  t->ch.try_send(to_time_point(now));  // capacity 1 and sent once: never full
  delete t;
  return no_deadline;
}

void discard_after(timer_node& n) {
  delete static_cast<after_timer*>(&n);
}

}  // namespace

// Shared by the ticker object and its timer: freed by whichever lets go last.
struct ticker_state : timer_node {
  chan<time_point> ch;
  std::int64_t period = 0;
  std::atomic<bool> stopped{false};
  std::atomic<int> refs{2};  // the ticker, and the timer while queued or firing
  std::atomic<std::uint64_t> dropped{0};

  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

namespace {

std::int64_t fire_tick(timer_node& n, std::int64_t now) {
  auto* t = static_cast<ticker_state*>(&n);
  if (t->stopped.load(std::memory_order_acquire)) {
    t->release();
    return no_deadline;
  }
  if (!t->ch.try_send(to_time_point(now))) t->dropped.fetch_add(1, std::memory_order_relaxed);
  // The next tick on the period's grid; ticks already missed are skipped, not fired in a burst.
  std::int64_t next = n.when + t->period;
  if (next <= now) next = now + t->period - (now - n.when) % t->period;
  return next;
}

void discard_tick(timer_node& n) {
  static_cast<ticker_state*>(&n)->release();
}

}  // namespace
}  // namespace detail

chan<std::chrono::steady_clock::time_point> after(std::chrono::nanoseconds d) {
  detail::scheduler& s = detail::running_scheduler("weft::after");
  auto* t = new detail::after_timer{};
  t->ch = chan<std::chrono::steady_clock::time_point>(1);
  t->when = detail::now_ns() + (d.count() > 0 ? d.count() : 0);
  t->fire = &detail::fire_after;
  t->discard = &detail::discard_after;
  chan<std::chrono::steady_clock::time_point> out = t->ch;
  s.add_timer(*t);  // from here on the timer owns `t`
  return out;
}

ticker::ticker(std::chrono::nanoseconds period) : ch_(1) {
  reset(period);
}

ticker::~ticker() {
  stop();
}

void ticker::stop() noexcept {
  if (!state_) return;
  state_->stopped.store(true, std::memory_order_release);
  // Still queued: take it out and drop the timer's reference. Otherwise it is firing right now
  // (at most that one tick can still arrive) and drops its reference when it sees `stopped`.
  if (detail::timer_heap::cancel(*state_)) state_->release();
  state_->release();
  state_ = nullptr;
}

void ticker::reset(std::chrono::nanoseconds period) {
  if (period.count() <= 0) throw std::invalid_argument("weft::ticker: the period must be positive");
  detail::scheduler& s = detail::running_scheduler("weft::ticker");
  stop();
  auto* st = new detail::ticker_state{};
  st->ch = ch_;
  st->period = period.count();
  st->when = detail::now_ns() + st->period;
  st->fire = &detail::fire_tick;
  st->discard = &detail::discard_tick;
  state_ = st;
  s.add_timer(*st);
}

std::uint64_t ticker::dropped() const noexcept {
  return state_ ? state_->dropped.load(std::memory_order_relaxed) : 0;
}

}  // namespace weft
