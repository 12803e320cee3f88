// How a worker with nothing to run finds work, and how it sleeps when there is none: its own
// timers, the global queue, the network, stealing from other workers (at most half the busy
// ones spinning), then parking on its futex or, for one worker at a time, in epoll. Go's
// findrunnable/stopm/wakep, Tokio's idle set.
#include <algorithm>

#include "futex.hpp"
#include "netpoll/poller.hpp"
#include "scheduler.hpp"

namespace weft::detail {
namespace {

constexpr int steal_rounds = 4;
constexpr std::int64_t runnext_steal_delay_ns = 3000;

std::uint64_t next_random(std::uint64_t& s) noexcept {  // xorshift64*
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 2685821657736338717ULL;
}

// A StoreLoad barrier between publishing work and reading the idle/spinning counts (and, on the
// parking side, between publishing idleness and re-reading the queues): Dekker's pattern.
#if WEFT_TSAN
constexpr bool fences_modelled = false;  // TSan: a barrier must be an RMW it can see
#else
constexpr bool fences_modelled = true;
#endif

void store_load_barrier() noexcept {
#if WEFT_TSAN
  static std::atomic<int> dummy{0};
  dummy.fetch_add(0, std::memory_order_seq_cst);  // TSan does not model fences
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace

bool scheduler::worth_moving_from(const worker& v) noexcept {
  return v.movable.load(std::memory_order_relaxed);
}

void scheduler::wake_idle_worker(bool after_full_barrier) noexcept {
  chaos::spin();  // between the work published and the barrier
  if (!after_full_barrier || !fences_modelled) store_load_barrier();
  if (nidle_.load(std::memory_order_seq_cst) == 0) return;
  if (nspinning_.load(std::memory_order_seq_cst) != 0) return;
  int zero = 0;
  if (!nspinning_.compare_exchange_strong(zero, 1)) return;
  worker* w = pop_idle();
  if (!w) {
    nspinning_.fetch_sub(1);
    return;
  }
  w->woken_spinning = true;
  unpark(*w);
}

void scheduler::add_timer(timer_node& t) noexcept {
  worker* w = current_worker();
  if (w && w->sched == this && !w->spare) {
    w->timers.insert(t);  // this worker looks at its heap before it sleeps
    return;
  }
  workers_[0]->timers.insert(t);
  // From an OS thread: a sleeping worker chose its wake-up time before this timer existed.
  if (worker* iw = pop_idle()) unpark(*iw);
}

worker* scheduler::pop_idle() noexcept {
  idle_lock_.lock();
  worker* w = idle_head_;
  if (w) {
    idle_head_ = w->next_idle;
    w->idle = false;
    nidle_.fetch_sub(1);
  }
  idle_lock_.unlock();
  return w;
}

// Wakes a worker taken off the idle list: on its futex, or in epoll if it polls there. Both
// sides use seq_cst so that either the waker sees `polling` or the poller sees the wake word.
void scheduler::unpark(worker& w) noexcept {
  w.wake_word.store(1, std::memory_order_seq_cst);
  futex_wake(&w.wake_word, 1);
  if (w.polling.load(std::memory_order_seq_cst)) {
    if (w.ring)
      w.ring->wake();
    else
      netpoller::started()->interrupt();
  }
}

// Under io_uring each worker (not the spares) has a ring, made on its own thread because the
// ring accepts requests from that thread only (SINGLE_ISSUER). Without one (the kernel refused
// this thread's, say for memory) the worker simply waits as under epoll.
void scheduler::open_ring(worker& w) noexcept {
  if (poller_ != poller_kind::io_uring || w.spare) return;
  int err = 0;
  w.ring = worker_ring::create(err);
  if (w.ring) netpoller::instance().register_lazily(true);
  rings_pending_.fetch_sub(1, std::memory_order_release);
}

// Leaving the loop for good: every read in flight is cancelled and reaped, so that no green
// thread left parked (unwound next, by worker 0) still has a request in the kernel; reads
// made after this wait for readiness instead.
void scheduler::close_ring(worker& w) noexcept {
  if (!w.ring) return;
  green_chain ready;
  w.ring->drain_for_exit(ready);
  for (green_thread* g = ready.head; g;) {
    green_thread* nx = g->next;
    push_local(w, g);
    g = nx;
  }
  // The ring itself lives until run() ends (scheduler::run_workers): a waker may still be
  // about to write its eventfd.
}

// Submits the reads green threads queued and takes in those that completed (at most a batch:
// as with epoll, what the network brings in must not push what is queued aside for long).
// True if it made any green thread runnable. Called where the loop polls the network: every
// 61st tick and with an empty queue, so that a busy worker enters the kernel once per batch.
bool scheduler::ring_pass(worker& w) noexcept {
  green_chain ready;
  w.ring->pass(ready);
  const bool found = ready.size != 0;
  queue_polled(w, ready);
  return found;
}

// park_in_poller's twin under io_uring: an idle worker always waits in its own ring (its reads
// complete only when it asks), and the one that holds the blocking-poll role also watches the
// process's epoll from there.
void scheduler::park_in_ring(worker& w, std::int64_t deadline) {
  if (!single_ && w.ring->has_in_flight()) {
    // With requests in flight, watch the ring a little before sleeping in the kernel: a
    // completion that comes meanwhile (the other end of a conversation answering from another
    // core) is then taken without the cross-core wake-up of a sleeping thread, which costs more
    // here than the turn itself (a Unix ping-pong at 2 workers: 19 -> 10 us a round trip). The
    // kernel flags work for the ring (TASKRUN_FLAG) while nobody waits in it; what was queued
    // went in before the worker went idle (find_runnable submits first). Wakers see `polling`
    // false meanwhile and only set the wake word.
    const std::int64_t until = std::min(now_ns() + ring_spin_ns, deadline);
    while (!w.ring->has_results() && w.wake_word.load(std::memory_order_acquire) == 0 &&
           now_ns() < until)
      __builtin_ia32_pause();
  }
  netpoller* np = netpoller::started();
  const bool epoll_role = np && np->registered() != 0 && np->try_begin_blocking_poll();
  w.polling.store(true, std::memory_order_seq_cst);
  chaos::point();  // a waker reads `polling` now
  green_chain ready;
  if (w.wake_word.load(std::memory_order_seq_cst) == 0 && !w.ring->has_results()) {
    w.ring->block(deadline, epoll_role ? np : nullptr, ready);
    note_network_polled();
  } else {
    w.ring->pass(ready);
  }
  w.polling.store(false, std::memory_order_relaxed);
  chaos::point();
  if (epoll_role) np->end_blocking_poll();
  wake_from_poll(w, ready);
}

// Collects green threads whose sockets became ready, without blocking. True if it found any.
bool scheduler::poll_network(worker& w) noexcept {
  netpoller* np = netpoller::started();
  if (!np || np->registered() == 0 || np->someone_blocks()) return false;
  const int n = np->poll(0, [&](green_thread* g) { push_local(w, g); });
  note_network_polled();
  if (n > 1 && !single_) wake_idle_worker();
  return n > 0;
}

// An idle worker with nothing to do blocks in epoll instead of on its futex, if no other worker
// does already, until a socket is ready, the next timer is due, or a waker interrupts it.
// False if it did not poll (the caller parks on the futex).
bool scheduler::park_in_poller(worker& w, std::int64_t deadline) {
  netpoller* np = netpoller::started();
  if (!np || np->registered() == 0 || !np->try_begin_blocking_poll()) return false;
  w.polling.store(true, std::memory_order_seq_cst);
  chaos::point();  // a waker reads `polling` now
  green_chain ready;
  auto collect = [&ready](green_thread* g) { ready.append(g); };
  if (w.wake_word.load(std::memory_order_seq_cst) == 0) {
    std::int64_t timeout = -1;
    if (deadline != no_deadline) timeout = std::max<std::int64_t>(deadline - now_ns(), 0);
    np->poll(timeout, collect);
    note_network_polled();
  }
  w.polling.store(false, std::memory_order_relaxed);
  chaos::point();
  np->end_blocking_poll();
  wake_from_poll(w, ready);
  return true;
}

// After an idle worker's blocking poll (epoll, or its ring): takes it off the idle list unless
// a waker did, and queues what the poll made runnable.
void scheduler::wake_from_poll(worker& w, green_chain& ready) {
  if (w.wake_word.load(std::memory_order_acquire) != 0) {
    w.wake_word.store(0, std::memory_order_relaxed);
    if (w.woken_spinning) {
      w.woken_spinning = false;
      w.spinning = true;
    }
  } else {
    leave_idle(w);
  }
  queue_polled(w, ready);
}

// Queues green threads a poll made runnable on `w`, and wakes a helper when there are several.
void scheduler::queue_polled(worker& w, green_chain& ready) noexcept {
  for (green_thread* g = ready.head; g;) {
    green_thread* nx = g->next;
    push_local(w, g);
    g = nx;
  }
  if (ready.size - ready.brief > 1 && !single_) wake_idle_worker();
}

void scheduler::stop_spinning(worker& w) {
  w.spinning = false;
  // The last spinner found work: there may be more, so keep one spinning (Go's resetspinning).
  if (nspinning_.fetch_sub(1) == 1) wake_idle_worker();
}

void scheduler::fire_timers(worker& w, timer_heap& heap, std::int64_t now) {
  heap.fire_due(now, [&](waiter* wt) {
    if (green_thread* g = wt->thread) push_local(w, g);
  });
}

green_thread* scheduler::steal(worker& w) {
  const auto n = static_cast<unsigned>(workers_.size());  // spares' queues too
  const std::int64_t now = now_ns();
  for (int round = 0; round < steal_rounds; ++round) {
    const unsigned start = static_cast<unsigned>(next_random(w.rng) % n);
    for (unsigned k = 0; k < n; ++k) {
      worker& v = *workers_[(start + k) % n];
      if (&v == &w) continue;
      if (stopping()) return nullptr;
      // An idle worker also runs other workers' due timers (theirs may be busy).
      fire_timers(w, v.timers, now);
      if (green_thread* g = take_local(w)) return g;
      if (!worth_moving_from(v)) continue;  // its queue runs sooner where it is
      if (!enter_as_thief(v)) continue;     // private until its owner or the monitor says
      if (green_thread* g = w.local.steal_from(v.local)) {
        leave_as_thief(v);
        w.steals.store(w.steals.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return g;
      }
      // Last round: the victim's runnext too, but only if its owner is stuck in one slice
      // (Go's stealRunNextG): a busy owner is about to run it, and taking it would only move
      // a hot green thread to a cold cache.
      if (round == steal_rounds - 1 && v.local.empty() &&
          v.runnext.load(std::memory_order_relaxed)) {
        const std::uint32_t slices = v.slices.load(std::memory_order_relaxed);
        const std::int64_t until = now_ns() + runnext_steal_delay_ns;
        while (now_ns() < until) __builtin_ia32_pause();  // 3 µs: no sched_yield syscalls
        if (v.slices.load(std::memory_order_relaxed) == slices) {
          if (green_thread* g = v.runnext.exchange(nullptr, std::memory_order_acq_rel)) {
            leave_as_thief(v);
            return g;
          }
        }
      }
      leave_as_thief(v);
    }
  }
  return nullptr;
}

green_thread* scheduler::find_runnable(worker& w) {
  if (green_thread* g = w.handed) {  // even when stopping: it is in no queue to unwind from
    w.handed = nullptr;
    return g;
  }
  if (w.spare) return find_runnable_spare(w);
  for (;;) {
    if (stopping()) return nullptr;
    ++w.tick;
    if (w.timers.next_deadline() != no_deadline &&
        ((w.tick & 7) == 0 || (w.local.empty() && !w.runnext.load(std::memory_order_relaxed))))
      fire_timers(w, w.timers, now_ns());
    if (w.tick % global_check_interval == 0 || epoch_passed(w)) {
      w.epoch_seen = sched_epoch_.load(std::memory_order_relaxed);
      w.recent_time = coarse_now_ns();  // epochs pass every 200 µs while busy
      if (!global_.empty()) {
        std::uint32_t n;
        if (green_thread* g = global_.pop_batch(1, n)) return g;
      }
      poll_network(w);  // so that busy workers still see sockets become ready (Tokio's 61)
      if (w.ring && w.ring->wants_enter()) ring_pass(w);  // and their reads complete
    } else if (w.ring && (w.tick % ring_send_interval) == 0 && w.ring->has_queued_sends()) {
      ring_pass(w);  // sends wait for no more than a few switches, reads for the check above
    }
    sync_queue_mode(w);
    if (!single_ && chaos::chance(20)) {  // a forced steal, through the thieves' door
      if (green_thread* g = steal(w)) return g;
    }
    if (green_thread* g = take_local(w)) return g;
    if (!global_.empty()) {
      std::uint32_t n;
      const std::uint32_t want =
          std::min<std::uint32_t>(global_.size() / worker_count() + 1, run_queue::capacity / 2);
      if (green_thread* g = global_.pop_batch(want, n)) {
        for (green_thread* rest = g->next; rest;) {
          green_thread* nx = rest->next;
          push_local(w, rest);
          rest = nx;
        }
        return g;
      }
    }
    if (w.ring) {
      // Alone, a worker enters only for what it would reap: what is queued is submitted by the
      // idle wait below, in the same entry, which also watches the process's epoll. With
      // others, it submits first: it may spin and steal for a while before it waits.
      if ((w.ring->has_results() || (!single_ && w.ring->wants_enter())) && ring_pass(w)) continue;
    } else if (poll_network(w)) {
      continue;
    }
    if (!single_) {
      const int busy = static_cast<int>(worker_count()) - nidle_.load();
      if (w.spinning || 2 * nspinning_.load() < busy) {
        if (!w.spinning) {
          w.spinning = true;
          nspinning_.fetch_add(1);
        }
        if (green_thread* g = steal(w)) return g;
      }
    }
    park_worker(w);
    w.recent_time = coarse_now_ns();  // it may have slept long
  }
}

bool scheduler::work_for(const worker& w) const noexcept {
  if (!global_.empty()) return true;
  for (auto& v : workers_) {
    // What a worker keeps to itself (see worth_moving_from) its own wake-ups do not offer
    // either; the monitor wakes a sleeper once it may be moved.
    if (v.get() != &w && (!worth_moving_from(*v) || !v->stealable.load(std::memory_order_relaxed)))
      continue;
    if (!v->local.empty() || v->runnext.load(std::memory_order_relaxed)) return true;
  }
  return false;
}

std::int64_t scheduler::earliest_timer() const noexcept {
  std::int64_t t = no_deadline;
  for (auto& v : workers_) t = std::min(t, v->timers.next_deadline());
  return t;
}

// Takes `w` off the idle list; false if a waker already did (it counted `w` as spinning).
bool scheduler::leave_idle(worker& w) {
  idle_lock_.lock();
  if (!w.idle) {
    idle_lock_.unlock();
    unsigned spins = 0;
    while (w.wake_word.load(std::memory_order_acquire) == 0) spin_pause(spins);
    w.wake_word.store(0, std::memory_order_relaxed);
    if (w.woken_spinning) {
      w.woken_spinning = false;
      w.spinning = true;
    }
    return false;
  }
  worker** p = &idle_head_;
  while (*p != &w) p = &(*p)->next_idle;
  *p = w.next_idle;
  w.idle = false;
  nidle_.fetch_sub(1);
  idle_lock_.unlock();
  return true;
}

void scheduler::park_worker(worker& w) {
  idle_lock_.lock();
  if (stopping() || !global_.empty()) {
    idle_lock_.unlock();
    return;
  }
  w.wake_word.store(0, std::memory_order_relaxed);
  w.next_idle = idle_head_;
  idle_head_ = &w;
  w.idle = true;
  nidle_.fetch_add(1);
  idle_lock_.unlock();
  if (w.spinning) {
    w.spinning = false;
    nspinning_.fetch_sub(1);
  }
  chaos::point();  // idle and published: a producer may look now
  store_load_barrier();
  // Re-check after publishing idleness: a producer that missed us must have pushed first.
  std::int64_t deadline = earliest_timer();
  if (work_for(w) || (deadline != no_deadline && deadline <= now_ns())) {
    leave_idle(w);
    return;
  }
  if (deadline == no_deadline && cfg_.detect_deadlock) deadline = check_deadlock(deadline);
  chaos::point();
  struct sleep_clock {  // the monitor's account of this worker's time asleep
    worker& w;
    std::int64_t from = now_ns();
    explicit sleep_clock(worker& sleeper) noexcept : w(sleeper) {
      w.asleep_since.store(from, std::memory_order_relaxed);
    }
    ~sleep_clock() {
      w.asleep_since.store(0, std::memory_order_relaxed);
      w.slept_ns.store(w.slept_ns.load(std::memory_order_relaxed) + (now_ns() - from),
                       std::memory_order_relaxed);
    }
  } clock{w};
  if (w.ring) {
    park_in_ring(w, deadline);
    return;
  }
  if (park_in_poller(w, deadline)) return;
  while (w.wake_word.load(std::memory_order_acquire) == 0) {
    futex_wait(&w.wake_word, 0, deadline);
    if (deadline != no_deadline && now_ns() >= deadline) break;
  }
  if (w.wake_word.load(std::memory_order_acquire) == 0) {
    if (leave_idle(w)) return;  // timer due: go fire it
    return;
  }
  w.wake_word.store(0, std::memory_order_relaxed);
  if (w.woken_spinning) {
    w.woken_spinning = false;
    w.spinning = true;
  }
}

}  // namespace weft::detail
