// Internal: how anything in weft waits. A waiter lives on the waiting thread's own stack (green
// stacks never move), is linked into the list of what it waits on, and is claimed by exactly one
// party (a notifier, its timer, or shutdown) with one CAS. The same code serves green threads
// (which park, freeing their worker) and plain OS threads (which block on a futex).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <type_traits>

#include "weft/cancel.hpp"
#include "weft/detail/spinlock.hpp"

namespace weft::detail {

struct green_thread;
struct worker;

enum class wake_reason : std::uint32_t { waiting = 0, notified, timed_out, cancelled };

// What a parked green thread waits for, as dumps and the deadlock report name it.
enum class wait_reason : std::uint8_t {
  none = 0,
  chan_receive,
  chan_send,
  select,
  mutex,
  condition_variable,
  wait_group,
  sleep,
  join,
  io_read,
  io_write,
  forever,   // a nil channel
  blocking,  // weft::blocking: its call runs on the blocking pool
  scope,     // weft::scope: its green threads to finish
};
const char* wait_reason_name(wait_reason r) noexcept;

using clock = std::chrono::steady_clock;
inline constexpr std::int64_t no_deadline = INT64_MAX;

// Nanoseconds on the steady clock (CLOCK_MONOTONIC), as timers store them.
inline std::int64_t to_deadline(clock::time_point tp) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
}
// The same for a time point of any clock (measured from now on the steady clock).
template <class Clock, class Dur>
std::int64_t deadline_of(const std::chrono::time_point<Clock, Dur>& tp) {
  if constexpr (std::is_same_v<Clock, clock>) {
    return to_deadline(tp);
  } else {
    return to_deadline(clock::now() + std::chrono::ceil<clock::duration>(tp - Clock::now()));
  }
}
std::int64_t now_ns() noexcept;
std::int64_t coarse_now_ns() noexcept;  // CLOCK_MONOTONIC_COARSE: a few ms of resolution

// Fields ordered to leave no padding: a waiter sits in every parked task's frame (a million
// parked tasks pay for each 8 bytes; a frame past 256 bytes moves up an allocator class).
struct waiter {
  std::atomic<std::uint32_t> state{0};  // a wake_reason; also the futex word of an OS thread
  bool linked = false;
  // Claimed only by holders of the one lock it parked under, by shutdown, or by a canceller: a
  // channel's send or recv (not a select, whose waiter every case's channel may claim) with no
  // timer (the park clears it otherwise: runtime/park.cpp settle_exclusive). The holder of that
  // lock through its bias may claim it without a CAS (channels/chan_core.cpp).
  bool exclusive = false;
  std::atomic<std::uint8_t> notifying{0};  // a claim without CAS is under way (see cancel.hpp)
  green_thread* thread = nullptr;          // set by park(); null: a plain OS thread
  waiter* prev = nullptr;
  waiter* next = nullptr;
  void* payload = nullptr;  // for the primitive's own use (e.g. a channel's value slot)

  // Claims the waiter for `why`; only the winner may wake it.
  bool claim(wake_reason why) noexcept {
    std::uint32_t expected = 0;
    return state.compare_exchange_strong(expected, static_cast<std::uint32_t>(why),
                                         std::memory_order_acq_rel);
  }
  // Two-phase claim for a hand-off (a channel moving a value into the waiter's slot): wins like
  // claim() but the waiter does not wake, not even an OS thread, until complete() publishes the
  // reason, so it never sees a half-written slot.
  static constexpr std::uint32_t claiming = 0x100;
  bool claim_pending() noexcept {
    std::uint32_t expected = 0;
    return state.compare_exchange_strong(expected, claiming, std::memory_order_acq_rel);
  }
  void complete(wake_reason why) noexcept {
    state.store(static_cast<std::uint32_t>(why), std::memory_order_release);
  }
  wake_reason reason() const noexcept {
    return static_cast<wake_reason>(state.load(std::memory_order_acquire));
  }
};
static_assert(sizeof(waiter) <= 5 * sizeof(void*), "waiter: keep it free of padding");

// Wakes a waiter claimed with claim(): an OS thread at once; a green thread is returned, to be
// passed to ready() after the lock is released (it cannot run, so its waiter stays valid).
green_thread* wake_claimed(waiter& w) noexcept;
// Makes a green thread runnable (null: nothing). On a worker it runs next.
void ready(green_thread* g) noexcept;
// Completes waiters claimed with claim_pending() (a chain linked by `next`, as claim_all and
// claim_one return) and wakes them. Call it after releasing the lock of the object they waited
// on: a woken waiter may return and destroy that object at once (a wait_group on its stack),
// so nothing may touch the object after this starts.
void release_claimed(waiter* chain, wake_reason why) noexcept;

// FIFO of waiters, protected by the owner's spinlock.
class waiter_list {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push_back(waiter& w) noexcept;
  waiter* pop_front() noexcept;
  void remove(waiter& w) noexcept;  // no-op if not linked
  // Pops until one waiter is claimed (claim_pending); null if none. Pass it to release_claimed.
  waiter* claim_one() noexcept;
  // Claims every waiter; returns them chained by `next` for release_claimed.
  waiter* claim_all() noexcept;

 private:
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
};

// Suspends the calling green thread or OS thread on `w` until it is claimed or `deadline`
// (steady-clock ns) passes. `held` (may be null) is released only once the caller is safely
// suspended, so a notifier that takes `held` always finds a waiter it may wake. Returns why it
// woke; after `timed_out` or `cancelled` the caller unlinks `w` itself (under its lock), and after
// `cancelled` calls throw_cancelled() (or reports std::errc::operation_canceled).
//
// Every wait but `wait_reason::mutex` is cancellable on a green thread outside a cancel_shield:
// a pending request makes it return `cancelled` at once, and one made while parked claims `w`
// with `cancelled` (runtime/cancel.cpp). The green thread's deadline (its scopes') bounds it
// too, and also ends it with `cancelled`.
wake_reason park(waiter& w, spinlock* held, std::int64_t deadline = no_deadline,
                 wait_reason what = wait_reason::none);
// The same, releasing several locks (a select holds one per channel).
wake_reason park_multi(waiter& w, spinlock* const* held, std::uint32_t held_count,
                       std::int64_t deadline = no_deadline, wait_reason what = wait_reason::none);

// A park of a stackless task (weft::task) in progress, kept in its awaiter (in the coroutine's
// frame, which does not move while it waits). The protocol is park()'s, cut in two where a
// stackful green thread would switch: the coroutine suspends in between, and the runtime
// releases `held` and publishes the waiter only once it has.
struct task_park {
  alignas(8) unsigned char space[32];  // the runtime's park state
  spinlock* lock = nullptr;            // one held lock, for awaiters that have one
  // The task that parked (set with `parked`): a task resumes as the same green thread, so
  // task_park_end need not look it up (an out-of-line call: green threads change OS threads).
  green_thread* by = nullptr;
  bool parked = false;  // task_park_begin suspended the task
  bool bounded_by_thread = false;
  bool timer_lent = false;
};
// A deadline's timer lives in space an awaiter lends (a sleep, which always has one: this many
// bytes), or else is allocated for the parks that need one (a scope's deadline over a channel
// wait), so that a million parked tasks do not each carry one.
inline constexpr std::size_t timer_space_size = 56;
// The first half, in await_suspend: false when the wait ended at once (a pending request, the
// end of weft::run, a past deadline; w's reason says which) with `held` released, and the
// coroutine must not suspend. True: it suspends, and resumes at `resume_at` (its handle's
// address) once `w` is claimed; then the second half, in await_resume, says why it woke.
bool task_park_begin(task_park& tp, void* resume_at, waiter& w, spinlock* const* held,
                     std::uint32_t held_count, std::int64_t deadline, wait_reason what,
                     void* lent_timer = nullptr) noexcept;
wake_reason task_park_end(task_park& tp, waiter& w) noexcept;
// A task's yield: false at the end of weft::run (throw weft::cancelled instead of suspending).
bool task_yield_begin(void* resume_at) noexcept;
// True when the running task has spent its budget (or the monitor asked it to yield).
bool task_yield_due() noexcept;
// The task's coroutine has ended with `error` (an ending without one needs no call: the task
// clears its resume point, and the runtime sees that). A weft::cancelled is a stop on request;
// anything else escaping a detached task ends the program, naming it.
void task_failed(std::exception_ptr error) noexcept;
// True on a stackless task.
bool in_task() noexcept;

// Throws weft::cancelled out of a wait: a cancellation request, or the end of weft::run.
[[noreturn]] void throw_cancelled();
// True while the calling green thread is being unwound because weft::run ends (not a request
// that code may outlive): an error_code overload then throws rather than report it.
bool unwinding_for_shutdown() noexcept;

// False on a green thread of a single-worker runtime, where a lock holder cannot be running.
bool spinning_may_help() noexcept;

// Cooperative budget point: a runtime operation that completed without blocking spends one unit;
// at zero the green thread yields first. No-op on OS threads.
void coop_point();

// The worker that last completed an operation on a shared object (a channel). Operations that
// alternate between workers mean green threads on different cores talk through it; when that
// traffic outweighs the work, the scheduler gathers them on one core (runtime/monitor.cpp).
struct last_user {
  std::atomic<const void*> worker{nullptr};
};

// The second half of coop_point() for an operation completed with a lock held (see note_user in
// chan_core.hpp): a green thread that must yield does so with coop_yield() after unlocking.
void coop_yield();
// ready(g) for a caller whose worker note_user returned (null: look it up).
void ready_from(worker* by, green_thread* g) noexcept;

}  // namespace weft::detail
