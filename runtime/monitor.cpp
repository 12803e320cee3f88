// The monitor thread (Go's sysmon). Workers are cooperative: one that runs a green thread which
// never calls into weft cannot look at its queues, the network or the global queue. The monitor
// watches them from outside, without a clock read on any worker's hot path:
//  - every `busy_interval` while any worker is busy (backing off to `calm_interval_max` while
//    nothing below is wanted sooner: see calm()) it advances the scheduling epoch; a worker
//    that sees a new epoch at its next switch polls the network and the global queue, and takes
//    up the monitor's latest judgement of its queue mode, at once instead of waiting for its
//    61st tick (a tick can be long: a slice of a CPU-heavy green thread is up to a whole budget
//    of work);
//  - each period it judges whether moving a worker's green threads to another core pays
//    (judge_movable: short slices, or green threads that talk across cores, stay put);
//  - a slice that has run for a whole period is flagged: the green thread yields at its next
//    budget point, so a green thread whose budget points are far apart still shares its worker;
//  - a worker stuck in one green thread for `stuck_after` (a loop without budget points, a
//    blocking system call) while green threads wait behind it or on the global queue: an idle
//    worker is woken to steal them, or, with none idle, a spare worker is started to run them
//    (runtime/spare_worker.cpp);
//  - if nobody polled the network for `stuck_after`, it polls and queues what is ready on the
//    global queue;
//  - once a second it lets the stack depot scavenge: pooled stacks nobody took for that long give
//    the kernel their deep pages, and beyond the depot's keep are unmapped (runtime/stack_pool);
//  - once every worker has slept for `trim_after_idle`, it gives the kernel the stacks pooled in
//    the depot (the workers' small caches stay): an idle server does not keep a burst's stacks.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "futex.hpp"
#include "move_judge.hpp"
#include "netpoll/poller.hpp"
#include "scheduler.hpp"
#include "thread_name.hpp"

namespace weft::detail {
namespace {

constexpr std::int64_t busy_interval_ns = 200'000;  // epoch period while workers are busy
// While busy workers need nothing the monitor gives at a faster pace (no I/O, timers, stuck
// workers or work held: a CPU-bound program), it backs off to this: each look preempts a worker
// on a machine with as many workers as cores (a switch each way), 5% of a fork-join fib(35) at
// 200 us here. Long slices are then asked to yield after 1.6-3.2 ms (Go's: 10 ms).
constexpr std::int64_t calm_interval_max_ns = 1'600'000;
constexpr std::int64_t idle_interval_max_ns = 10'000'000;  // back-off while all are idle
constexpr std::int64_t stuck_after_ns = 10'000'000;        // Go's forcePreemptNS
constexpr std::int64_t trim_after_idle_ns = 1'000'000'000;

// What the monitor remembers of a worker between two of its looks.
struct watch {
  std::uint32_t slices = 0;
  std::int64_t since = 0;  // when `slices` was last seen to change
  bool reported = false;
  std::uint32_t period_slices = 0;     // `slices` at the start of this period
  std::uint32_t period_handovers = 0;  // `shared_handovers` then
  std::int64_t period_slept = 0;       // the worker's time asleep then (slept())
  std::int64_t period_start = 0;
  move_history moves;
  bool was_movable = true;  // the last verdict
};

// Time `w` has spent asleep in park_worker, the current sleep included.
std::int64_t slept(const worker& w, std::int64_t now) noexcept {
  const std::int64_t since = w.asleep_since.load(std::memory_order_relaxed);
  return w.slept_ns.load(std::memory_order_relaxed) + (since != 0 ? now - since : 0);
}

// Judges whether spreading `w`'s green threads to other cores pays (move_judge.hpp) and applies
// the verdict:
//  - slices averaging under a move's cost (a channel hand-off, a spawn that finishes at once)
//    run sooner where they are;
//  - green threads that spend half their time handing channels over between cores run faster
//    gathered on one: they stay where they are for a back-off time. Meanwhile, as wake-ups put
//    the woken green thread on the waker's core (Go's runnext), a worker whose green threads
//    all wait soon runs out of work and sleeps, leaving the talkers together.
void judge_movable(worker& w, watch& wt, std::uint32_t slices, std::int64_t now,
                   std::int64_t slept_now, bool& long_slices_hold_work) {
  move_period p;
  p.now = now;
  p.length = now - wt.period_start;
  p.awake = p.length - (slept_now - wt.period_slept);
  p.slices = slices - wt.period_slices;
  p.handovers = w.shared_handovers.load(std::memory_order_relaxed) - wt.period_handovers;
  const move_verdict v = judge_move(wt.moves, p);
  if (v == move_verdict::asleep) return;  // its last verdict stands, and nothing is queued
  const bool movable = v == move_verdict::movable;
  w.movable.store(movable, std::memory_order_relaxed);
  // A worker leaves private mode itself at its next schedule point; one still private a period
  // after it became movable, or inside one slice all period, is stuck: open its queue for it.
  if (movable && (p.slices == 0 || wt.was_movable) && w.plain_ok.load(std::memory_order_relaxed))
    revoke_private_queue(w);
  wt.was_movable = movable;
  // Work queued behind a slice that turned long, which no waker called for.
  if (movable && (!w.local.empty() || w.runnext.load(std::memory_order_relaxed)))
    long_slices_hold_work = true;
}

}  // namespace

void scheduler::start_monitor() {
  monitor_stop_.store(0, std::memory_order_relaxed);
  monitor_ = std::thread([this] { monitor_loop(); });
  name_thread(monitor_, "weft-monitor");
}

void scheduler::stop_monitor() noexcept {
  if (!monitor_.joinable()) return;
  monitor_stop_.store(1, std::memory_order_release);
  futex_wake(&monitor_stop_, 1);
  monitor_.join();
}

bool scheduler::is_idle(worker& w) noexcept {
  idle_lock_.lock();
  const bool idle = w.idle;
  idle_lock_.unlock();
  return idle;
}

void scheduler::wake_one() noexcept {
  if (!single_) {
    wake_idle_worker();
  } else if (worker* w = pop_idle()) {
    unpark(*w);
  }
}

void scheduler::note_network_polled() noexcept {
  last_network_poll_.store(now_ns(), std::memory_order_relaxed);
}

// Whether nothing the monitor does for busy workers is wanted at its busy pace: no descriptor
// watched or ring request in flight (a busy worker reaps I/O at its next epoch), no timer (a
// long slice would hold it), no stuck worker, spare or held work, and no idle worker beside
// queued green threads (the judgements that let it steal them come with each look).
bool scheduler::calm(unsigned stuck, bool work_held) const noexcept {
  if (stuck != 0 || work_held || active_spares_.load(std::memory_order_relaxed) != 0) return false;
  if (earliest_timer() != no_deadline) return false;
  if (netpoller* np = netpoller::started(); np && np->registered() != 0) return false;
  // The rings are made before any worker runs a green thread; reading their pointers is safe
  // once all are (acquire: each worker's release after it stored its own).
  if (rings_pending_.load(std::memory_order_acquire) != 0) return false;
  const bool some_idle = nidle_.load(std::memory_order_relaxed) != 0;
  for (auto& v : workers_) {
    if (v->ring && v->ring->has_in_flight()) return false;
    if (some_idle && (!v->local.empty() || v->runnext.load(std::memory_order_relaxed)))
      return false;
  }
  return true;
}

void scheduler::monitor_loop() {
  const unsigned n = worker_count();
  std::vector<watch> watched(workers_.size());
  const bool trace = tracer_.joinable();
  std::int64_t interval = busy_interval_ns;
  std::int64_t idle_since = -1;  // when all workers were first seen asleep; -1: not all are
  note_network_polled();
  while (monitor_stop_.load(std::memory_order_acquire) == 0) {
    futex_wait(&monitor_stop_, 0, now_ns() + interval);
    if (monitor_stop_.load(std::memory_order_acquire) != 0) break;
    const std::int64_t now = now_ns();
    depot_.scavenge(now);
    // All asleep: nothing to watch, unless a spare still runs (it may be stuck with work queued
    // behind it, which only this loop's judgement lets the sleepers take).
    if (nidle_.load(std::memory_order_relaxed) >= static_cast<int>(n) &&
        active_spares_.load(std::memory_order_relaxed) == 0) {
      interval = std::min(interval * 2, idle_interval_max_ns);  // all asleep: nothing to watch
      for (auto& wt : watched) wt.since = now;
      if (idle_since < 0) idle_since = now;
      if (now - idle_since >= trim_after_idle_ns && depot_.pooled() > 0) depot_.trim(0);
      continue;
    }
    idle_since = -1;
    unsigned stuck = 0;
    // Runnable green threads, or due timers, that a stuck worker may be holding back.
    bool work_held = !global_.empty() || earliest_timer() <= now;
    bool long_slices_hold_work = false;
    for (unsigned i = 0; i < workers_.size(); ++i) {
      worker& w = *workers_[i];
      watch& wt = watched[i];
      const std::uint32_t slices = w.slices.load(std::memory_order_relaxed);
      const std::int64_t slept_now = slept(w, now);
      if (wt.period_start != 0 && !single_)
        judge_movable(w, wt, slices, now, slept_now, long_slices_hold_work);
      wt.period_slices = slices;
      wt.period_handovers = w.shared_handovers.load(std::memory_order_relaxed);
      wt.period_slept = slept_now;
      wt.period_start = now;
      // The same slice a whole period later: ask it to yield at its next budget point. (An
      // idle worker's flag is harmless: the next slice starts by clearing it.)
      if (slices == wt.slices && cfg_.coop_budget != 0)
        w.preempt.store(true, std::memory_order_relaxed);
      if (slices != wt.slices) {
        wt.slices = slices;
        wt.since = now;
        wt.reported = false;
        continue;
      }
      // A spare counts too: what queued on it while it ran short slices is held once one turns
      // long, and no other spare retires then. A dormant spare holds nothing.
      if (w.spare && !w.spare_active.load(std::memory_order_relaxed)) continue;
      if (now - wt.since < stuck_after_ns || is_idle(w)) continue;
      ++stuck;  // one green thread (or a blocking call in it) has held this worker that long
      const bool queued = !w.local.empty() || w.runnext.load(std::memory_order_relaxed);
      work_held = work_held || queued;
      if (trace && !wt.reported) {
        wt.reported = true;
        std::fprintf(stderr,
                     "weft monitor: worker %u has run one green thread for %lld ms (%u queued "
                     "behind it)\n",
                     i, static_cast<long long>((now - wt.since) / 1'000'000),
                     static_cast<unsigned>(w.local.size()));
      }
    }
    // After the judgements: a worker that sees the new epoch goes through its loop at its next
    // switch and takes up its queue mode from them (hand_off does not look).
    sched_epoch_.fetch_add(1, std::memory_order_release);
    stuck_workers_.store(stuck, std::memory_order_relaxed);
    if (long_slices_hold_work && !single_) wake_idle_worker();
    if (stuck != 0 && work_held && !single_) {
      // An idle worker steals what the stuck ones hold; with none, a spare runs it (Go's
      // handoff), at most one spare per stuck worker.
      if (nidle_.load(std::memory_order_relaxed) > 0) {
        wake_idle_worker();
      } else if (active_spares_.load(std::memory_order_relaxed) < stuck) {
        activate_spare();
      }
    }

    interval = calm(stuck, work_held)
                   ? std::min(std::max(interval, busy_interval_ns) * 2, calm_interval_max_ns)
                   : busy_interval_ns;

    if (now - last_network_poll_.load(std::memory_order_relaxed) >= stuck_after_ns) {
      netpoller* np = netpoller::started();
      if (np && np->registered() != 0 && !np->someone_blocks()) {
        const int ready = np->poll(0, [&](green_thread* g) { global_.push(g); });
        note_network_polled();
        if (ready > 0) wake_one();
      }
    }
  }
}

}  // namespace weft::detail
