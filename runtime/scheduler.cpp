#include "scheduler.hpp"

#include <pthread.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>

#include "allocator.hpp"
#include "fatal.hpp"
#include "futex.hpp"
#include "netpoll/poller.hpp"
#include "overflow_guard.hpp"
#include "thread_state.hpp"

namespace weft::detail {

#if !WEFT_ASAN && !WEFT_TSAN
static_assert(sizeof(green_thread) <= 168,
              "a green thread record outgrew its budget (see green_thread.hpp)");
#endif

namespace {

thread_local worker* tls_worker = nullptr;
std::atomic<scheduler*> g_active{nullptr};
std::atomic<std::uint64_t> g_next_id{1};
constexpr std::uint64_t id_block = 1024;

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

void thread_stack_bounds(void*& bottom, std::size_t& size) noexcept {
  pthread_attr_t attr;
  bottom = nullptr;
  size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &bottom, &size);
    pthread_attr_destroy(&attr);
  }
}

// The first frame of every green thread.
void green_entry(transfer t) noexcept {
  worker* w = current_worker();
  green_thread* g = w->current;
  annotate_entered(g->annotations);  // first: the sanitizers must know which stack this is
  w->sched->resumed(t);
  if (!g->cancel_requested) {
    try {
      g->vtable->invoke(g->storage());
    } catch (const forced_unwind&) {
      // unwound at shutdown: done
    } catch (...) {
      fatal_uncaught_exception(g->id, g->name, std::current_exception());
    }
  }
  g->vtable->destroy(g->storage());
  destroy_locals(g);
  g->reason = switch_reason::exit;
  w = g->running_on;
  // Hand over directly unless ASan runs: the frames of hand_off would stay poisoned on this
  // stack, and ASan would see them when the stack is reused; the loop's switch leaves none.
  if constexpr (!sanitizer_keeps_dead_frames) w->sched->hand_off(*w, g);  // returns if it can't
  switch_context(w->sched_ctx, g, g->annotations, w->sched_annotations, true);
  std::abort();  // unreachable: a finished green thread is never resumed
}

}  // namespace

__attribute__((noinline)) worker* current_worker() noexcept {
  worker* w = tls_worker;
  asm volatile("" ::: "memory");
  return w;
}

__attribute__((noinline)) green_thread* current_green() noexcept {
  worker* w = tls_worker;
  return w ? w->current : nullptr;
}

scheduler* active_scheduler() noexcept {
  return g_active.load(std::memory_order_acquire);
}

void switch_out(green_thread* g, switch_reason reason) noexcept {
  g->reason = reason;
  worker* w = g->running_on;
  save_thread_state(g);
  transfer t = switch_context(w->sched_ctx, g, g->annotations, w->sched_annotations);
  g->sched->resumed(t);
  restore_thread_state(g);
}

// What a switch passes: the scheduler loop passes its worker; a green thread handing over
// directly passes itself with the low bit set, because its context is saved only by the jump
// and the green thread switched to must store it (and only then queue it, so that no other
// worker can resume a stale context).
namespace {
constexpr std::uintptr_t handoff_tag = 1;
}

[[gnu::always_inline]] inline void scheduler::resumed(transfer t) noexcept {
  const auto bits = reinterpret_cast<std::uintptr_t>(t.data);
  if (bits & handoff_tag) {
    auto* from = reinterpret_cast<green_thread*>(bits & ~handoff_tag);
    from->ctx = t.fctx;
    after_switch(*from->running_on, from);
  } else {
    static_cast<worker*>(t.data)->sched_ctx = t.fctx;
  }
}

bool scheduler::hand_off(worker& w, green_thread* g) noexcept {
  // Every 61st tick goes through the loop (global queue, shutdown); so does every 8th while
  // timers are pending, as the loop would check them.
  if ((w.tick + 1) % global_check_interval == 0 ||
      (w.timers.next_deadline() != no_deadline && (w.tick & 7) == 7) || stopping() ||
      epoch_passed(w))
    return false;
  green_thread* next = take_local(w);
  if (!next) return false;
  ++w.tick;
  if (!next->ctx) {
    try {
      prepare_first_run(w, next);
    } catch (const std::exception&) {
      push_local(w, next);  // no stack for it now: the loop will report why
      return false;
    }
  }
  next->running_on = &w;
  w.slices.store(w.slices.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  next->budget = cfg_.coop_budget ? cfg_.coop_budget : UINT32_MAX;
  w.preempt.store(false, std::memory_order_relaxed);
  w.current = next;
  void* note = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(g) | handoff_tag);
  save_thread_state(g);
  transfer t = switch_context(next->ctx, note, g->annotations, next->annotations,
                              g->reason == switch_reason::exit);
  resumed(t);  // never reached by a green thread that exited
  restore_thread_state(g);
  return true;
}

scheduler::scheduler(const config& cfg)
    : cfg_(cfg),
      depot_(cfg.stack_size),
      blocking_(cfg.max_blocking_threads, std::chrono::seconds(10)) {
  unsigned n = cfg.workers;
  if (n == 0) {
    if (const char* env = std::getenv("WEFT_WORKERS")) n = static_cast<unsigned>(std::atoi(env));
  }
  if (n == 0) n = std::thread::hardware_concurrency();
  if (n == 0) n = 1;
  if (n > 1024) n = 1024;
  single_ = n == 1;
  nworkers_ = n;
  // As many spares as workers, so that even with every worker stuck, queued green threads run.
  // None in single-threaded mode: its queues are not safe to share (no CAS on pops).
  const unsigned spares = single_ ? 0 : n;
  workers_.reserve(n + spares);
  for (unsigned i = 0; i < n + spares; ++i) {
    workers_.push_back(std::make_unique<worker>(*this, i, depot_));
    workers_.back()->rng = 0x9E3779B97F4A7C15ULL * (i + 1) + 1;
    workers_.back()->spare = i >= n;
  }
}

scheduler::~scheduler() = default;

void scheduler::register_thread(worker& home, green_thread* g) noexcept {
  g->home = &home;
  home.registry_lock.lock();
  g->reg_next = home.registry;
  if (home.registry) home.registry->reg_prev = g;
  home.registry = g;
  home.registry_lock.unlock();
}

void scheduler::unregister_thread(green_thread* g) noexcept {
  worker& home = *g->home;
  home.registry_lock.lock();
  if (g->reg_prev)
    g->reg_prev->reg_next = g->reg_next;
  else
    home.registry = g->reg_next;
  if (g->reg_next) g->reg_next->reg_prev = g->reg_prev;
  home.registry_lock.unlock();
}

green_thread* scheduler::create(std::size_t storage_size, std::size_t storage_align,
                                const task_vtable* vt, const spawn_options& o) {
  worker* w = current_worker();
  const bool on_worker = w && w->sched == this;
  // Fail here, with std::system_error, if no stack could be had when it first runs.
  if (o.stack_size != 0) {
    depot_.probe(o.stack_size);
  } else if (on_worker) {
    w->stacks.ensure_available();
  }
  // One allocation: the record, the callable, then the name (if any).
  constexpr std::size_t default_align = alignof(std::max_align_t);
  const std::size_t align = std::max(storage_align, default_align);
  const std::size_t offset = (sizeof(green_thread) + align - 1) & ~(align - 1);
  const std::size_t name_len = std::min<std::size_t>(o.name.size(), max_name_length);
  const std::size_t total = offset + storage_size + (name_len ? name_len + 1 : 0);
  const std::size_t alloc_align = align > default_align ? align : 0;
  void* mem = runtime_alloc(total, alloc_align);
  green_thread* g = ::new (mem) green_thread;
  g->alloc_size = static_cast<std::uint32_t>(total);
  g->storage_off = static_cast<std::uint16_t>(offset);
  g->alloc_align = static_cast<std::uint8_t>(alloc_align);
  g->vtable = vt;
  g->sched = this;
  g->stack_size = o.stack_size;
  if (name_len) {
    char* name = static_cast<char*>(mem) + offset + storage_size;
    o.name.copy(name, name_len);
    name[name_len] = '\0';
    g->name = name;
  }
  if (on_worker) {
    if (w->id_next == w->id_end) {
      w->id_next = g_next_id.fetch_add(id_block, std::memory_order_relaxed);
      w->id_end = w->id_next + id_block;
    }
    g->id = w->id_next++;
    w->created.store(w->created.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    g->id = g_next_id.fetch_add(1, std::memory_order_relaxed);
    external_created_.fetch_add(1, std::memory_order_relaxed);
  }
  return g;
}

void scheduler::free_record(green_thread* g) noexcept {
  const std::size_t size = g->alloc_size, align = g->alloc_align;
  g->~green_thread();
  runtime_free(g, size, align);
}

void scheduler::destroy_unstarted(green_thread* g) noexcept {
  external_finished_.fetch_add(1, std::memory_order_relaxed);
  free_record(g);
}

void scheduler::push_overflow(worker& w, green_thread* g) noexcept {
  while (!w.local.push(g)) {
    // Full: move the older half and `g` to the global queue in one lock (Go's runqputslow).
    std::uint32_t n = 0;
    green_thread* chain = w.local.take_half(n);
    if (!chain) continue;  // a thief made room
    green_thread* last = chain;
    while (last->next) last = last->next;
    last->next = g;
    global_.push_chain(chain, g, n + 1);
    return;
  }
}

void scheduler::make_runnable(green_thread* g, worker* w, placement where) noexcept {
  if (w && w->sched == this) {
    if (where == placement::back) {
      push_local(*w, g);
      if (!single_) wake_idle_worker();
      return;
    }
    green_thread* old;
    if (single_) {
      old = w->runnext.load(std::memory_order_relaxed);
      w->runnext.store(g, std::memory_order_relaxed);
      if (old) push_local(*w, old);
      return;
    }
    // seq_cst: the exchange is the StoreLoad barrier wake_idle_worker needs (a locked xchg on
    // x86), as Go's runnext CAS is for wakep.
    old = w->runnext.exchange(g, std::memory_order_seq_cst);
    if (old) push_local(*w, old);
    wake_idle_worker(/*after_full_barrier=*/true);  // a parker that missed it sees runnext
    return;
  }
  // From an OS thread (or another runtime's worker): once `g` is queued it may run, let main
  // return and weft::run free this scheduler, while this thread still wakes a worker. The count
  // makes run wait for it.
  external_wakers_.fetch_add(1, std::memory_order_acq_rel);
  struct leave {
    std::atomic<int>& n;
    ~leave() { n.fetch_sub(1, std::memory_order_release); }
  } guard{external_wakers_};
  global_.push(g);
  if (single_) {
    // The lone worker may be parked: wake it if so.
    if (worker* iw = pop_idle()) unpark(*iw);
    return;
  }
  wake_idle_worker();
}

void scheduler::wake_idle_worker(bool after_full_barrier) noexcept {
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
  if (w.polling.load(std::memory_order_seq_cst)) netpoller::started()->interrupt();
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
  green_thread* head = nullptr;
  green_thread* tail = nullptr;
  int n = 0;
  auto collect = [&](green_thread* g) {
    g->next = nullptr;
    if (tail)
      tail->next = g;
    else
      head = g;
    tail = g;
  };
  if (w.wake_word.load(std::memory_order_seq_cst) == 0) {
    std::int64_t timeout = -1;
    if (deadline != no_deadline) timeout = std::max<std::int64_t>(deadline - now_ns(), 0);
    n = np->poll(timeout, collect);
    note_network_polled();
  }
  w.polling.store(false, std::memory_order_relaxed);
  np->end_blocking_poll();
  if (w.wake_word.load(std::memory_order_acquire) != 0) {
    w.wake_word.store(0, std::memory_order_relaxed);
    if (w.woken_spinning) {
      w.woken_spinning = false;
      w.spinning = true;
    }
  } else {
    leave_idle(w);
  }
  while (head) {
    green_thread* nx = head->next;
    push_local(w, head);
    head = nx;
  }
  if (n > 1 && !single_) wake_idle_worker();
  return true;
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
      if (green_thread* g = w.local.steal_from(v.local)) {
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
          if (green_thread* g = v.runnext.exchange(nullptr, std::memory_order_acq_rel)) return g;
        }
      }
    }
  }
  return nullptr;
}

green_thread* scheduler::find_runnable(worker& w) {
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
    if (poll_network(w)) continue;
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

bool scheduler::any_work() const noexcept {
  if (!global_.empty()) return true;
  for (auto& v : workers_) {
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
  store_load_barrier();
  // Re-check after publishing idleness: a producer that missed us must have pushed first.
  std::int64_t deadline = earliest_timer();
  if (any_work() || (deadline != no_deadline && deadline <= now_ns())) {
    leave_idle(w);
    return;
  }
  if (deadline == no_deadline && cfg_.detect_deadlock) deadline = check_deadlock(deadline);
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

// Gives a green thread that has never run its stack and first context. Throws
// std::system_error when no stack can be mapped.
void scheduler::prepare_first_run(worker& w, green_thread* g) {
  stack_span s = w.stacks.get(g->stack_size);
  g->stack_base = s.base;
  g->stack_mapped = s.size;
  const std::size_t usable = s.size - page_size();
  annotate_create(g->annotations, s.usable_bottom(), usable, true);
  g->ctx = make_context(s.top(), usable, &green_entry);
}

void scheduler::run_green(worker& w, green_thread* g) {
  if (!g->ctx) {
    try {
      prepare_first_run(w, g);
    } catch (const std::exception& e) {
      fatal_message(g->id, g->name, e.what());
    }
  }
  g->running_on = &w;
  w.slices.store(w.slices.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  g->budget = cfg_.coop_budget ? cfg_.coop_budget : UINT32_MAX;
  w.preempt.store(false, std::memory_order_relaxed);
  w.current = g;
  transfer t = switch_context(g->ctx, &w, w.sched_annotations, g->annotations);
  g = static_cast<green_thread*>(t.data);
  g->ctx = t.fctx;
  w.current = nullptr;
  after_switch(w, g);
}

// What a green thread asked for when it switched away, done once it is fully suspended (by the
// scheduler loop, or by the green thread it handed over to).
void scheduler::after_switch_slow(worker& w, green_thread* g) noexcept {
  // Registered the first time it switches away still alive, on the worker it ran on (it usually
  // finishes there too, so the registry lock stays local). One that runs to its end in one slice
  // never touches the registry: while it runs, its worker's `current` shows it. Done before it
  // is queued or its locks released, after which another worker may run it.
  if (!g->home && g->reason != switch_reason::exit) register_thread(w, g);
  switch (g->reason) {
    case switch_reason::yield:
      push_local(w, g);
      break;
    case switch_reason::park: {
      // Only from here may anyone wake it. The lock array lives on g's stack, and g may run
      // again as soon as the first lock is released: copy the pointers out first.
      park_state& p = *g->parking;
      w.unlock_scratch.assign(p.locks, p.locks + p.lock_count);
      if (p.timer) {
        timer_home(w).insert(*p.timer);
        // A spare keeps no timers: worker 0 may sleep past this one unless it looks again.
        if (w.spare) {
          if (worker* iw = pop_idle()) unpark(*iw);
        }
      }
      for (spinlock* held : w.unlock_scratch) held->unlock();
      break;
    }
    case switch_reason::exit:
      finish(w, g);
      break;
  }
}

void scheduler::finish(worker& w, green_thread* g) noexcept {
  annotate_destroy(g->annotations);
  w.stacks.put(stack_span{g->stack_base, g->stack_mapped});
  if (g->home) unregister_thread(g);
  w.finished.store(w.finished.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  free_record(g);
}

void scheduler::worker_main(worker& w) {
  overflow_guard guard;  // this thread's alternate signal stack, for overflow reports
  tls_worker = &w;
  bind_thread_state(w);
  w.recent_time = coarse_now_ns();
  void* bottom;
  std::size_t size;
  thread_stack_bounds(bottom, size);
  annotate_create(w.sched_annotations, bottom, size, false);
  while (green_thread* g = find_runnable(w)) {
    if (w.spinning) stop_spinning(w);
    run_green(w, g);
  }
  tls_worker = nullptr;
}

void scheduler::stop() noexcept {
  idle_lock_.lock();
  stopping_.store(true, std::memory_order_release);
  worker* w = idle_head_;
  idle_head_ = nullptr;
  while (w) {
    worker* nx = w->next_idle;
    w->idle = false;
    nidle_.fetch_sub(1);
    unpark(*w);
    w = nx;
  }
  idle_lock_.unlock();
  for (unsigned i = nworkers_; i < workers_.size(); ++i) {
    workers_[i]->wake_word.store(1, std::memory_order_seq_cst);
    futex_wake(&workers_[i]->wake_word, 1);
  }
}

void scheduler::run_workers() {
  scheduler* expected = nullptr;
  if (!g_active.compare_exchange_strong(expected, this))
    throw std::logic_error("weft::run: a runtime is already running in this process");
  start_introspection();
  start_monitor();
  for (unsigned i = 1; i < worker_count(); ++i) {
    worker& w = *workers_[i];
    w.thread = std::thread([this, &w] { worker_main(w); });
  }
  worker_main(*workers_[0]);
  for (unsigned i = 1; i < worker_count(); ++i) workers_[i]->thread.join();
  stop_monitor();  // then no spare starts any more
  for (unsigned i = nworkers_; i < workers_.size(); ++i)
    if (workers_[i]->thread_started) workers_[i]->thread.join();
  active_spares_.store(0, std::memory_order_relaxed);  // stopped where they were
  unwind_remaining();
  for (unsigned spins = 0; external_wakers_.load(std::memory_order_acquire) != 0;)
    spin_pause(spins);
  for (auto& v : workers_) v->timers.drain();  // weft::after timers that never fired
  stop_introspection();
  g_active.store(nullptr, std::memory_order_release);
}

// After main returned and the other workers stopped: every green thread still alive is resumed
// with cancel_requested, so that its next park point throws forced_unwind and its destructors
// run. Single-threaded, on the caller of run() acting as worker 0.
void scheduler::unwind_remaining() {
  worker& w0 = *workers_[0];
  tls_worker = &w0;
  void* bottom;
  std::size_t size;
  thread_stack_bounds(bottom, size);
  annotate_create(w0.sched_annotations, bottom, size, false);
  const std::int64_t give_up = now_ns() + 5'000'000'000;  // for wakers that never finish
  for (;;) {
    std::vector<green_thread*> batch;
    for (auto& v : workers_) {
      if (green_thread* g = v->runnext.exchange(nullptr)) batch.push_back(g);
      while (green_thread* g = v->local.pop()) batch.push_back(g);
    }
    std::uint32_t n;
    for (green_thread* g = global_.pop_batch(UINT32_MAX, n); g;) {
      green_thread* nx = g->next;
      batch.push_back(g);
      g = nx;
    }
    std::size_t being_woken = 0;  // claimed by an OS thread (a pool thread, say), not yet queued
    for (auto& v : workers_) {
      v->registry_lock.lock();
      for (green_thread* g = v->registry; g; g = g->reg_next) {
        if (g->cancel_requested || !g->parking) continue;
        if (g->parking->on->claim(wake_reason::cancelled))
          batch.push_back(g);
        else
          ++being_woken;
      }
      v->registry_lock.unlock();
    }
    if (batch.empty()) {
      if (being_woken == 0 || now_ns() > give_up) break;
      std::this_thread::sleep_for(std::chrono::microseconds(50));  // its waker queues it soon
      continue;
    }
    for (green_thread* g : batch) {
      g->cancel_requested = true;
      run_green(w0, g);
    }
  }
  std::size_t left = 0;
  for (auto& v : workers_)
    for (green_thread* g = v->registry; g; g = g->reg_next) ++left;
  if (left) {
    std::fprintf(stderr,
                 "weft: %zu green thread(s) parked again while being unwound at the end of "
                 "weft::run (e.g. caught forced_unwind without rethrowing); they are leaked\n",
                 left);
  }
  tls_worker = nullptr;
}

void scheduler::fill_stats(runtime_stats& out) const noexcept {
  out.workers = worker_count();
  out.spare_workers = active_spares_.load(std::memory_order_relaxed);
  std::uint64_t created = external_created_.load(std::memory_order_relaxed);
  std::uint64_t finished = external_finished_.load(std::memory_order_relaxed);
  for (auto& v : workers_) {
    created += v->created.load(std::memory_order_relaxed);
    finished += v->finished.load(std::memory_order_relaxed);
    out.steals += v->steals.load(std::memory_order_relaxed);
    out.forced_yields += v->forced_yields.load(std::memory_order_relaxed);
  }
  out.green_threads_created = created;
  out.green_threads_live = created - finished;
  out.stacks_mapped = depot_.mapped();
  out.stacks_pooled = depot_.pooled();
  out.stack_bytes_reserved = depot_.reserved_bytes();
  for (auto& v : workers_) out.stacks_pooled += v->stacks.pooled();
  out.idle_workers = static_cast<unsigned>(std::max(nidle_.load(std::memory_order_relaxed), 0));
  out.spinning_workers =
      static_cast<unsigned>(std::max(nspinning_.load(std::memory_order_relaxed), 0));
  out.runnable_global = global_.size();
  for (auto& v : workers_) {
    out.runnable_local += v->local.size() + (v->runnext.load(std::memory_order_relaxed) ? 1 : 0);
  }
  out.parked = parked_count();
  out.blocking_threads = blocking_.threads();
  out.blocking_queued = blocking_.queued();
}

}  // namespace weft::detail
