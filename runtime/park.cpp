// Parking and waking: the waiter protocol shared by every blocking primitive.
#include <sched.h>
#include <time.h>

#include <new>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include "allocator.hpp"
#include "cancel.hpp"
#include "chaos.hpp"
#include "fatal.hpp"
#include "futex.hpp"
#include "queue_mode.hpp"
#include "scheduler.hpp"
#include "weft/coop.hpp"
#include "weft/detail/chan_core.hpp"
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

waiter* waiter_list::claim_one() noexcept {
  while (waiter* w = pop_front()) {
    if (w->claim_pending()) {
      w->next = nullptr;
      return w;
    }
  }
  return nullptr;
}

waiter* waiter_list::claim_all() noexcept {
  waiter* chain = nullptr;
  while (waiter* w = pop_front()) {
    if (!w->claim_pending()) continue;  // its timer or shutdown got there first
    w->next = chain;
    chain = w;
  }
  return chain;
}

void release_claimed(waiter* chain, wake_reason why) noexcept {
  while (chain) {
    // Read everything first: once completed, an OS-thread waiter may return and its frame die.
    waiter* next = chain->next;
    green_thread* g = chain->thread;
    chaos::point();  // claimed, not complete: the waiter must not wake yet
    chain->complete(why);
    if (g) {
      ready(g);
    } else {
      futex_wake(&chain->state, 1);
    }
    chain = next;
  }
}

void ready(green_thread* g) noexcept {
  if (!g) return;
  worker* w = current_worker();
  g->sched->make_runnable(
      g, w, w && w->current != nullptr ? scheduler::placement::next : scheduler::placement::back);
}

bool in_task() noexcept {
  green_thread* g = current_green();
  return g && is_task(g);
}

bool spinning_may_help() noexcept {
  green_thread* g = current_green();
  return !g || !g->sched->single();
}

void throw_cancelled() {
  throw weft::cancelled{};
}

namespace {

// The runtime is ending: a green thread asked to unwind must not start a new wait. Once its
// unwinding is under way, waits work normally (destructors may join what is unwinding too), and
// the runtime claims them again while any are left.
bool must_unwind(green_thread* g) noexcept {
  if (!shutting_down(g) || g->unwinding) return false;
  g->unwinding = true;
  return true;
}

wake_reason park_os_thread(waiter& w, spinlock* const* held, std::uint32_t held_count,
                           std::int64_t deadline) {
  for (std::uint32_t i = 0; i < held_count; ++i) held[i]->unlock();
  for (;;) {
    const std::uint32_t s = w.state.load(std::memory_order_acquire);
    if (s != 0 && s != waiter::claiming) return static_cast<wake_reason>(s);
    if (s == 0 && deadline != no_deadline && now_ns() >= deadline) {
      if (w.claim(wake_reason::timed_out)) return wake_reason::timed_out;
      continue;
    }
    // A pending claim completes within a few instructions: wait on the value seen.
    futex_wait(&w.state, s, s == 0 ? deadline : no_deadline);
  }
}

}  // namespace

const char* wait_reason_name(wait_reason r) noexcept {
  switch (r) {
    case wait_reason::none:
      return "parked";
    case wait_reason::chan_receive:
      return "chan receive";
    case wait_reason::chan_send:
      return "chan send";
    case wait_reason::select:
      return "select";
    case wait_reason::mutex:
      return "mutex";
    case wait_reason::condition_variable:
      return "condition variable";
    case wait_reason::wait_group:
      return "wait_group";
    case wait_reason::sleep:
      return "sleep";
    case wait_reason::join:
      return "join";
    case wait_reason::io_read:
      return "IO read";
    case wait_reason::io_write:
      return "IO write";
    case wait_reason::forever:
      return "nil channel (forever)";
    case wait_reason::blocking:
      return "blocking call";
    case wait_reason::scope:
      return "scope";
  }
  return "parked";
}

std::int64_t coarse_now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

static_assert(std::is_trivially_destructible_v<timer_node>, "park_multi never destroys it");

namespace {

// Whether a channel's waiter stays exclusive (waiter::exclusive, claimed without a CAS by the
// holder of the channel's biased lock): not if a timer may claim it, nor in a single-worker
// runtime whose lock the park does not hold through its bias (a canceller on that worker skips
// its barrier, so the claimer must be that worker: a lock held through its bias now is biased to
// it for as long as the waiter waits, since nothing else runs green threads in that runtime).
inline void settle_exclusive(waiter& w, const worker* from, bool timed, spinlock* const* held,
                             std::uint32_t held_count) noexcept {
  if (w.exclusive && (timed || (from->sole && !(held_count == 1 && held[0]->held_through_bias()))))
    w.exclusive = false;
}

// The switch away and back, common to every park of a green thread.
[[gnu::always_inline]] inline wake_reason park_switch(green_thread* g, waiter& w,
                                                      spinlock* const* held,
                                                      std::uint32_t held_count,
                                                      std::int64_t deadline, wait_reason what) {
  w.thread = g;
  // The worker's clock, refreshed every few switches: a dump's "waited 3.2 s" needs no more,
  // and reading a clock on every park would cost more than the rest of the park's bookkeeping.
  g->parked_since.store(g->running_on->recent_time, std::memory_order_relaxed);
  g->waiting_for.store(what, std::memory_order_relaxed);
  park_state state;
  state.on = &w;
  state.locks = held;
  state.lock_count = held_count;
  // Most parks have no deadline: their timer node is never built.
  alignas(timer_node) unsigned char timer_space[sizeof(timer_node)];
  if (deadline != no_deadline) {
    state.timer = ::new (timer_space) timer_node;
    state.timer->when = deadline;
    state.timer->target = &w;
    // A canceller may wake us while the worker still queues this timer: wait for it to finish.
    g->cancel_holds.fetch_add(parker_busy_hold, std::memory_order_relaxed);
  }
  g->parking = &state;
  g->reason = switch_reason::park;
  worker* from = g->running_on;
  settle_exclusive(w, from, deadline != no_deadline, held, held_count);
  from->parks.store(from->parks.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (!g->sched->hand_off(*from, g)) switch_out(g, switch_reason::park);
  worker* to = g->running_on;
  to->resumes.store(to->resumes.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  g->waiting_for.store(wait_reason::none, std::memory_order_relaxed);
  g->parking = nullptr;
  leave_wait(g);
  if (state.timer) timer_heap::cancel(*state.timer);  // trivially destructible: nothing else
  return w.reason();
}

// A park with a deadline, or with cancellation state to honour (a request, a shield, the end of
// weft::run, the green thread's own deadline).
[[gnu::noinline]] wake_reason park_checked(green_thread* g, waiter& w, spinlock* const* held,
                                           std::uint32_t held_count, std::int64_t deadline,
                                           wait_reason what) {
  const std::uint32_t bits = g->cancel_bits.load(std::memory_order_relaxed);
  // A mutex wait is never cancelled (as in Go and userver): a lock is held only briefly, and
  // cleanup code must be able to take one.
  const bool cancellable = what != wait_reason::mutex && (bits & shield_mask) == 0;
  bool bounded_by_thread = false;  // the green thread's deadline comes first
  if (cancellable && (bits & has_deadline_bit) && g->deadline < deadline) {
    deadline = g->deadline;
    bounded_by_thread = true;
  }
  const bool shutdown = must_unwind(g);
  const bool requested = cancellable && (bits & cancel_requested_bit);
  if (shutdown || requested || (deadline != no_deadline && deadline <= now_ns())) {
    // Nobody can claim w while we hold `held` (or, without a lock, nobody knows of it yet).
    wake_reason why = wake_reason::timed_out;
    if (shutdown || requested) {
      why = wake_reason::cancelled;
    } else if (bounded_by_thread) {
      why = wake_reason::cancelled;  // and so is every later wait while it bounds them
    }
    w.claim(why);
    for (std::uint32_t i = 0; i < held_count; ++i) held[i]->unlock();
    return w.reason();
  }
  wake_reason why = park_switch(g, w, held, held_count, deadline, what);
  if (why == wake_reason::cancelled && shutting_down(g)) g->unwinding = true;
  if (why == wake_reason::timed_out && bounded_by_thread) why = wake_reason::cancelled;
  return why;
}

}  // namespace

wake_reason park_multi(waiter& w, spinlock* const* held, std::uint32_t held_count,
                       std::int64_t deadline, wait_reason what) {
  green_thread* g = current_green();
  if (!g) return park_os_thread(w, held, held_count, deadline);
  if (is_task(g)) [[unlikely]] {
    for (std::uint32_t i = 0; i < held_count; ++i) held[i]->unlock();
    throw std::logic_error(
        "weft: a blocking wait inside a weft::task (it has no stack to park): co_await the "
        "operation's async_ form instead");
  }
  if (deadline != no_deadline || g->cancel_bits.load(std::memory_order_relaxed) != 0) [[unlikely]]
    return park_checked(g, w, held, held_count, deadline, what);
  const wake_reason why = park_switch(g, w, held, held_count, no_deadline, what);
  if (why == wake_reason::cancelled && shutting_down(g)) g->unwinding = true;
  return why;
}

wake_reason park(waiter& w, spinlock* held, std::int64_t deadline, wait_reason what) {
  return held ? park_multi(w, &held, 1, deadline, what) : park_multi(w, nullptr, 0, deadline, what);
}

void yield_now() {
  green_thread* g = current_green();
  if (!g) {
    std::this_thread::yield();
    return;
  }
  // A task cannot switch from inside a call: it yields at its next co_await, as its budget
  // (still spent) then tells it.
  if (is_task(g)) return;
  if (must_unwind(g)) throw_cancelled();  // not a wait: only the runtime's end unwinds here
  g->reason = switch_reason::yield;
  if (!g->sched->hand_off(*g->running_on, g)) switch_out(g, switch_reason::yield);
}

namespace {

// The budget counts operations; the monitor's flag bounds time, for operations that are heavy (a
// large allocation, a long computation between two budget points).
void spend_budget(green_thread* g, worker* w) {
  if (g->unconstrained_depth != 0) return;
  if (--g->budget != 0 && !w->preempt.load(std::memory_order_relaxed)) return;
  w->forced_yields.store(w->forced_yields.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
  yield_now();
}

}  // namespace

void coop_point() {
  if (green_thread* g = current_green()) spend_budget(g, g->running_on);
}

void coop_point_on(worker& w) {
  spend_budget(w.current, &w);
}

user_note note_user(chan_core& c) noexcept {
  green_thread* g = current_green();
  if (!g) return {nullptr, false};
  worker* w = g->running_on;
  last_user& shared = c.user;
  if (shared.worker.load(std::memory_order_relaxed) != w) {
    shared.worker.store(w, std::memory_order_relaxed);
    c.bias_streak = 0;
    w->shared_handovers.store(w->shared_handovers.load(std::memory_order_relaxed) + 1,
                              std::memory_order_relaxed);
  } else if (!c.lock.biased() && ++c.bias_streak >= 256u << c.bias_doublings &&
             lock_bias_allowed()) {
    c.lock.bias_to_holder();  // not biased, so held through its flag
    c.bias_streak = 0;
    if (c.bias_doublings < 20) ++c.bias_doublings;
  }
  if (g->unconstrained_depth != 0) return {w, false};
  return {w, --g->budget == 0 || w->preempt.load(std::memory_order_relaxed)};
}

void ready_from(worker* by, green_thread* g) noexcept {
  if (!g) return;
  if (!by) return ready(g);
  // `by` runs a green thread (note_user saw one): what ready() would find.
  g->sched->make_runnable(g, by, scheduler::placement::next);
}

void coop_yield() {
  green_thread* g = current_green();
  if (!g) return;
  worker* w = g->running_on;
  w->forced_yields.store(w->forced_yields.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
  yield_now();
}

// Stackless parks (weft::task): park_checked and park_switch cut at the switch, which for a
// task is its coroutine's suspension.
namespace {
static_assert(sizeof(park_state) <= sizeof(task_park::space) &&
                  alignof(park_state) <= alignof(task_park),
              "task_park::space is too small for the runtime's park state");
static_assert(sizeof(timer_node) <= timer_space_size && alignof(timer_node) <= 8,
              "timer_space_size is too small for a timer_node");

park_state& state_of(task_park& tp) noexcept {
  return *std::launder(reinterpret_cast<park_state*>(tp.space));
}

void set_resume_point(green_thread* g, void* resume_at) noexcept {
  *static_cast<void**>(g->storage()) = resume_at;  // the task's slot starts with it
}
}  // namespace

bool task_park_begin(task_park& tp, void* resume_at, waiter& w, spinlock* const* held,
                     std::uint32_t held_count, std::int64_t deadline, wait_reason what,
                     void* lent_timer) noexcept {
  green_thread* g = current_green();
  tp.bounded_by_thread = false;
  tp.parked = false;
  const std::uint32_t bits = g->cancel_bits.load(std::memory_order_relaxed);
  if (deadline != no_deadline || bits != 0) [[unlikely]] {
    const bool cancellable = what != wait_reason::mutex && (bits & shield_mask) == 0;
    if (cancellable && (bits & has_deadline_bit) && g->deadline < deadline) {
      deadline = g->deadline;
      tp.bounded_by_thread = true;
    }
    const bool shutdown = must_unwind(g);
    const bool requested = cancellable && (bits & cancel_requested_bit);
    if (shutdown || requested || (deadline != no_deadline && deadline <= now_ns())) {
      const bool cancel = shutdown || requested || tp.bounded_by_thread;
      w.claim(cancel ? wake_reason::cancelled : wake_reason::timed_out);
      for (std::uint32_t i = 0; i < held_count; ++i) held[i]->unlock();
      return false;
    }
  }
  timer_node* timer = nullptr;
  if (deadline != no_deadline) {
    void* space = lent_timer;
    tp.timer_lent = space != nullptr;
    if (!space) {
      try {
        space = runtime_alloc(sizeof(timer_node));
      } catch (const std::bad_alloc&) {
        fatal_message(g->id, g->name, "out of memory for a task's deadline timer", true);
      }
    }
    timer = ::new (space) timer_node;
  }
  w.thread = g;
  g->parked_since.store(g->running_on->recent_time, std::memory_order_relaxed);
  g->waiting_for.store(what, std::memory_order_relaxed);
  park_state* state = ::new (tp.space) park_state;
  state->on = &w;
  state->locks = held;
  state->lock_count = held_count;
  if (timer) {
    state->timer = timer;
    state->timer->when = deadline;
    state->timer->target = &w;
    g->cancel_holds.fetch_add(parker_busy_hold, std::memory_order_relaxed);
  }
  g->parking = state;
  g->reason = switch_reason::park;
  worker* from = g->running_on;
  settle_exclusive(w, from, timer != nullptr, held, held_count);
  from->parks.store(from->parks.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  set_resume_point(g, resume_at);
  tp.by = g;
  tp.parked = true;
  return true;
}

wake_reason task_park_end(task_park& tp, waiter& w) noexcept {
  green_thread* g = tp.by;
  worker* to = g->running_on;
  to->resumes.store(to->resumes.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  g->waiting_for.store(wait_reason::none, std::memory_order_relaxed);
  g->parking = nullptr;
  leave_wait(g);
  if (timer_node* t = state_of(tp).timer) {
    timer_heap::cancel(*t);
    if (!tp.timer_lent) runtime_free(t, sizeof(timer_node));
  }
  wake_reason why = w.reason();
  if (why == wake_reason::cancelled && shutting_down(g)) g->unwinding = true;
  if (why == wake_reason::timed_out && tp.bounded_by_thread) why = wake_reason::cancelled;
  return why;
}

bool task_yield_begin(void* resume_at) noexcept {
  green_thread* g = current_green();
  if (must_unwind(g)) return false;
  g->reason = switch_reason::yield;
  set_resume_point(g, resume_at);
  return true;
}

bool task_yield_due() noexcept {
  green_thread* g = current_green();
  return g->unconstrained_depth == 0 &&
         (g->budget == 0 || g->running_on->preempt.load(std::memory_order_relaxed));
}

void task_failed(std::exception_ptr error) noexcept {
  green_thread* g = current_green();
  try {
    std::rethrow_exception(error);
  } catch (const weft::cancelled&) {
    // it stopped as asked (or was unwound at the end of weft::run)
  } catch (...) {
    fatal_uncaught_exception(g->id, g->name, std::current_exception(), true);
  }
}

void sleep_until_ns(std::int64_t deadline) {
  waiter w;
  const wake_reason why = park(w, nullptr, deadline, wait_reason::sleep);
  if (why == wake_reason::cancelled) throw_cancelled();
}

void event::set(green_thread** clear) noexcept {
  lock_.lock();
  if (clear) *clear = nullptr;
  set_.store(true, std::memory_order_release);
  waiter* chain = waiters_.claim_all();
  lock_.unlock();
  release_claimed(chain, wake_reason::notified);
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
  if (park(w, &lock_, no_deadline, wait_reason::join) == wake_reason::notified) return;
  lock_.lock();
  waiters_.remove(w);
  lock_.unlock();
  throw_cancelled();
}

}  // namespace weft::detail

namespace weft {

void consume_budget() {
  detail::coop_point();
}

unconstrained::unconstrained() noexcept {
  if (detail::green_thread* g = detail::current_green()) ++g->unconstrained_depth;
}

unconstrained::~unconstrained() {
  if (detail::green_thread* g = detail::current_green()) {
    if (g->unconstrained_depth != 0) --g->unconstrained_depth;
  }
}

}  // namespace weft
