// The scheduler's core: creating green threads, switching into and out of them (directly from
// one to the next when the next is local), queueing the runnable, the worker loop, and the end
// of a run. How an idle worker finds work or sleeps is in find_work.cpp.
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
#include "overflow_guard.hpp"
#include "thread_name.hpp"
#include "thread_state.hpp"

namespace weft::detail {

#if !WEFT_ASAN && !WEFT_TSAN
static_assert(sizeof(green_thread) <= 192,
              "a green thread record outgrew its budget (see green_thread.hpp)");
#endif

namespace {

thread_local worker* tls_worker = nullptr;
std::atomic<scheduler*> g_active{nullptr};
std::atomic<std::uint64_t> g_next_id{1};
constexpr std::uint64_t id_block = 1024;

// A counter only its worker writes (stats() reads it from anywhere): no read-modify-write.
void bump(std::atomic<std::uint64_t>& counter) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
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

// Why the callable being destroyed on this thread never ran (see abandon_unstarted), and whether
// it told its owner.
thread_local std::exception_ptr tls_never_ran;
thread_local bool tls_never_ran_told = false;

// The first frame of every green thread.
void green_entry(transfer t) noexcept {
  worker* w = current_worker();
  green_thread* g = w->current;
  annotate_entered(g->annotations);  // first: the sanitizers must know which stack this is
  w->sched->resumed(t);
  if (!shutting_down(g)) {
    try {
      g->vtable->invoke(g->storage());
    } catch (const weft::cancelled&) {
      // cancelled (or unwound at shutdown): it stopped as asked
    } catch (...) {
      fatal_uncaught_exception(g->id, g->name, std::current_exception());
    }
  }
  g->vtable->destroy(g->storage());
  destroy_locals(g);
  release_cancel_extra(g);
  g->reason = switch_reason::exit;
  w = g->running_on;
  // Hand over directly unless ASan runs: the frames of hand_off would stay poisoned on this
  // stack, and ASan would see them when the stack is reused; the loop's switch leaves none.
  if constexpr (!sanitizer_keeps_dead_frames) w->sched->hand_off(*w, g);  // returns if it can't
  switch_context(w->sched_ctx, g, g->annotations, w->sched_annotations, true);
  std::abort();  // unreachable: a finished green thread is never resumed
}

}  // namespace

std::exception_ptr why_never_ran() noexcept {
  if (tls_never_ran) tls_never_ran_told = true;
  return tls_never_ran;
}

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

// Every 61st tick goes through the loop (global queue, shutdown); so does every 8th while timers
// are pending, as the loop would check them, and the first after each monitor epoch: the loop
// also takes up the monitor's latest judgement of the queue mode (sync_queue_mode), which the
// direct paths, taken for most switches, need not look at.
bool scheduler::loop_turn_due(worker& w) const noexcept {
  return (w.tick + 1) % global_check_interval == 0 ||
         (w.timers.next_deadline() != no_deadline && (w.tick & 7) == 7) || stopping() ||
         epoch_passed(w);
}

bool scheduler::hand_off(worker& w, green_thread* g) noexcept {
  if (loop_turn_due(w)) return false;
  green_thread* next = take_local(w);
  if (!next) return false;
  if (is_task(next)) {
    // A task runs on the worker's stack, which the loop owns: it runs from there, first. Kept
    // aside meanwhile rather than queued again: nobody else needs to see it for that instant.
    w.handed = next;
    return false;
  }
  ++w.tick;
  if (!next->ctx) {
    // A fresh stack's first touch is a page fault (tens of µs on a virtual machine): never taken
    // while `g`'s park still holds its locks, or every worker that wants one of them waits it
    // out (a million green threads parking on one channel ran no faster on 2 workers than on
    // 1). It runs next from the loop instead, once the locks are released.
    if (g->reason == switch_reason::park && w.stacks.next_is_fresh(next->stack_size)) {
      make_runnable(next, &w, placement::next);
      return false;
    }
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
  private_queues_ = !single_ && private_queues_supported();
#if WEFT_ASAN || WEFT_TSAN
  cache_records_ = false;  // the sanitizers must see each record freed, and reused only by malloc
#else
  cache_records_ = true;
#endif
  nworkers_ = n;
  poller_ = choose_poller(cfg.poller == poller_backend::epoll      ? "epoll"
                          : cfg.poller == poller_backend::io_uring ? "io_uring"
                                                                   : "auto");
  // As many spares as workers, so that even with every worker stuck, queued green threads run.
  // None in single-threaded mode: its queues are not safe to share (no CAS on pops).
  const unsigned spares = single_ ? 0 : n;
  workers_.reserve(n + spares);
  for (unsigned i = 0; i < n + spares; ++i) {
    workers_.push_back(std::make_unique<worker>(*this, i, depot_));
    workers_.back()->rng = 0x9E3779B97F4A7C15ULL * (i + 1) + 1;
    workers_.back()->spare = i >= n;
  }
  // Single-threaded mode is private mode for good: no thief exists and nothing revokes it, so
  // its queue operations take the same plain path as a private worker's.
  if (single_) workers_[0]->plain_ok.store(true, std::memory_order_relaxed);
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

green_thread* scheduler::create(worker* caller, std::size_t storage_size, std::size_t storage_align,
                                const task_vtable* vt, const spawn_options& o) {
  worker* w = caller;
  const bool on_worker = w && w->sched == this;
  // Fail here, with std::system_error, if no stack could be had when it first runs. A task
  // needs none.
  if (vt->stackless) {
  } else if (o.stack_size != 0) {
    if (o.stack_size > UINT32_MAX) {
      depot_.unmap(depot_.map(o.stack_size));  // one the kernel refuses: its std::system_error
      throw std::invalid_argument("weft::go/spawn: stacks beyond 4 GiB are unsupported");
    }
    if (depot_.mapping_size(o.stack_size) != depot_.default_size())
      depot_.ensure_sized(o.stack_size);
    else if (on_worker)
      w->stacks.ensure_available();
  } else if (on_worker) {
    w->stacks.ensure_available();
  }
  // One allocation: the record, the callable, then the name (if any).
  constexpr std::size_t default_align = alignof(std::max_align_t);
  const std::size_t align = std::max(storage_align, default_align);
  const std::size_t offset = (sizeof(green_thread) + align - 1) & ~(align - 1);
  const std::size_t name_len = std::min<std::size_t>(o.name.size(), max_name_length);
  const std::size_t alloc_align = align > default_align ? align : 0;
  std::size_t total = offset + storage_size + (name_len ? name_len + 1 : 0);
  void* mem = nullptr;
  if (alloc_align == 0) {
    total = record_cache::alloc_size(total);
    if (on_worker && cache_records_) mem = w->records.get(total);
  }
  if (!mem) mem = runtime_alloc(total, alloc_align);
  green_thread* g = ::new (mem) green_thread;
  g->alloc_size = static_cast<std::uint32_t>(total);
  g->storage_off = static_cast<std::uint16_t>(offset);
  g->alloc_align = static_cast<std::uint8_t>(alloc_align);
  g->vtable = vt;
  g->sched = this;
  g->stack_size = static_cast<std::uint32_t>(o.stack_size);
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
    bump(w->created);
    if (vt->stackless) bump(w->tasks_created);
  } else {
    g->id = g_next_id.fetch_add(1, std::memory_order_relaxed);
    external_created_.fetch_add(1, std::memory_order_relaxed);
    if (vt->stackless) external_tasks_created_.fetch_add(1, std::memory_order_relaxed);
  }
  return g;
}

void scheduler::free_record(green_thread* g, worker* w) noexcept {
  const std::size_t size = g->alloc_size, align = g->alloc_align;
  g->~green_thread();
  if (w && cache_records_ && align == 0 && w->records.put(g, size)) return;
  runtime_free(g, size, align);
}

void* task_frame_alloc(std::size_t size) {
  const std::size_t total = frame_cache::alloc_size(size);
  worker* w = tls_worker;  // a frame is made and freed within one call: no switch in between
  if (w && w->sched->cache_records_)
    if (void* p = w->frames.get(total)) return p;
  return runtime_alloc(total);
}

void task_frame_free(void* p, std::size_t size) noexcept {
  const std::size_t total = frame_cache::alloc_size(size);
  worker* w = tls_worker;
  if (w && w->sched->cache_records_ && w->frames.put(p, total)) return;
  runtime_free(p, total);
}

void scheduler::destroy_unstarted(green_thread* g) noexcept {
  external_finished_.fetch_add(1, std::memory_order_relaxed);
  if (is_task(g)) external_tasks_finished_.fetch_add(1, std::memory_order_relaxed);
  free_record(g, nullptr);
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
  if (chaos::chance(100)) {  // anywhere it may legally go: next, back, or the global queue
    if (chaos::chance(500)) w = nullptr;
    where = chaos::chance(500) ? placement::back : placement::next;
  }
  if (w && w->sched == this) {
    if (where == placement::back) {
      push_local(*w, g);
      if (!single_ && worth_moving_from(*w)) wake_idle_worker();
      return;
    }
    green_thread* old;
    if (begin_plain(*w)) {
      // Private (or single-threaded): no thief looks here, and no idle worker could take it
      // (the owner wakes one when it leaves private mode with work queued).
      old = w->runnext.load(std::memory_order_relaxed);
      w->runnext.store(g, std::memory_order_relaxed);
      if (old) push_local(*w, old);
      end_plain(*w);
      return;
    }
    // seq_cst: the exchange is the StoreLoad barrier wake_idle_worker needs (a locked xchg on
    // x86), as Go's runnext CAS is for wakep.
    old = w->runnext.exchange(g, std::memory_order_seq_cst);
    if (old) push_local(*w, old);
    // No other worker for green threads too short to move: this one runs them soon (and the
    // monitor wakes one if this slice turns out long).
    if (worth_moving_from(*w))
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

// A green thread for which no stack could be had when it was to run first (spawn made sure of
// one, but on its spawner's worker; this one found none and the kernel would map none). It ends
// here, on the worker's stack, as if its function had thrown the std::system_error without
// running: its callable is destroyed, and one that reports to an owner (weft::spawn's join
// state, a scope) hands the error on. A detached one has nobody to tell: that ends the program,
// as any exception escaping a detached green thread does.
void scheduler::abandon_unstarted(worker& w, green_thread* g) noexcept {
  tls_never_ran = std::current_exception();
  tls_never_ran_told = false;
  try {
    g->vtable->destroy(g->storage());
  } catch (...) {
    fatal_uncaught_exception(g->id, g->name, std::current_exception());
  }
  if (!tls_never_ran_told) fatal_uncaught_exception(g->id, g->name, tls_never_ran);
  tls_never_ran = nullptr;
  release_cancel_extra(g);
  if (g->home) unregister_thread(g);
  bump(w.finished);
  if (is_task(g)) bump(w.tasks_finished);
  free_record(g, &w);
}

// Runs `g`, then, as hand_off does between green threads, the tasks queued after it, without a
// pass through the loop until its turn is due. A green thread found next is handed to the loop.
void scheduler::run_task(worker& w, green_thread* g) {
  for (;;) {
    run_task_slice(w, g);
    if (loop_turn_due(w)) return;
    green_thread* next = take_local(w);
    if (!next) return;
    if (!is_task(next)) {
      w.handed = next;
      return;
    }
    ++w.tick;
    g = next;
  }
}

// A task runs on the worker's own stack until its coroutine suspends: a park or yield
// awaiter has then set `reason` (and `parking`) as a stackful green thread does before it
// switches out, and after_switch completes the park the same way. Its coroutine clears its
// resume point when it ends.
void scheduler::run_task_slice(worker& w, green_thread* g) {
  g->running_on = &w;
  w.slices.store(w.slices.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  g->budget = cfg_.coop_budget ? cfg_.coop_budget : UINT32_MAX;
  w.preempt.store(false, std::memory_order_relaxed);
  w.current = g;
  g->reason = switch_reason::park;
  g->parking = nullptr;
  if (shutting_down(g) && !g->home) {
    g->vtable->destroy(g->storage());  // never ran: its frame goes unrun (its owner is told)
    g->reason = switch_reason::exit;
  } else {
    g->vtable->invoke(g->storage());
    if (!*static_cast<void**>(g->storage())) g->reason = switch_reason::exit;
  }
  w.current = nullptr;
  if (g->reason == switch_reason::exit) {
    destroy_locals(g);
    release_cancel_extra(g);
    finish(w, g);
    return;
  }
  if (g->reason == switch_reason::park && !g->parking)
    fatal_message(g->id, g->name,
                  "a weft::task awaited something that is not weft's (only weft's awaitables "
                  "resume a task)",
                  true);
  after_switch(w, g);
}

void scheduler::run_green(worker& w, green_thread* g) {
  if (is_task(g)) {
    run_task(w, g);
    g = w.handed;  // a green thread found after the tasks runs from here, as the loop would
    if (!g) return;
    w.handed = nullptr;
  }
  if (!g->ctx) {
    try {
      prepare_first_run(w, g);
    } catch (const std::exception&) {
      abandon_unstarted(w, g);
      return;
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
      timer_node* timer = p.timer;
      // Published first, so a request made from here on reaches it; a canceller that wakes g
      // now finds it waiting for parker_busy_hold before it takes its timer back out.
      const bool self_cancelled = publish_wait(g, p.on);
      chaos::spin();
      if (timer) {
        timer_home(w).insert(*timer);
        // A spare keeps no timers: worker 0 may sleep past this one unless it looks again.
        if (w.spare) {
          if (worker* iw = pop_idle()) unpark(*iw);
        }
        g->cancel_holds.fetch_sub(parker_busy_hold, std::memory_order_release);
      }
      for (spinlock* held : w.unlock_scratch) held->unlock();
      if (self_cancelled) make_runnable(g, &w, placement::back);
      break;
    }
    case switch_reason::exit:
      finish(w, g);
      break;
  }
}

void scheduler::finish(worker& w, green_thread* g) noexcept {
  if (!is_task(g)) {
    annotate_destroy(g->annotations);
    w.stacks.put(stack_span{g->stack_base, g->stack_mapped});
  }
  if (g->home) unregister_thread(g);
  bump(w.finished);
  if (is_task(g)) bump(w.tasks_finished);
  free_record(g, &w);
}

void scheduler::worker_main(worker& w) {
  overflow_guard guard;  // this thread's alternate signal stack, for overflow reports
  tls_worker = &w;
  w.sole = single_;
  bind_thread_state(w);
  w.recent_time = coarse_now_ns();
  void* bottom;
  std::size_t size;
  thread_stack_bounds(bottom, size);
  annotate_create(w.sched_annotations, bottom, size, false);
  open_ring(w);
  // Each worker makes its ring on its own thread: none runs a green thread before all have,
  // so that the program's main green thread finds the process's descriptors settled.
  for (unsigned spins = 0; rings_pending_.load(std::memory_order_acquire) != 0;) spin_pause(spins);
  while (green_thread* g = find_runnable(w)) {
    if (w.spinning) stop_spinning(w);
    run_green(w, g);
  }
  close_ring(w);
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
  // Before the monitor starts: a spare it activates early must wait for the rings too.
  rings_pending_.store(poller_ == poller_kind::io_uring ? nworkers_ : 0, std::memory_order_relaxed);
  start_introspection();
  start_monitor();
  for (unsigned i = 1; i < worker_count(); ++i) {
    worker& w = *workers_[i];
    w.thread = std::thread([this, &w] { worker_main(w); });
    name_thread(w.thread, "weft-worker", static_cast<int>(w.index));
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
  for (auto& v : workers_) {  // drained as each worker left; no waker can reach them now
    delete v->ring;
    v->ring = nullptr;
  }
  stop_introspection();
  g_active.store(nullptr, std::memory_order_release);
}

// After main returned and the other workers stopped: every green thread still alive is resumed
// with shutdown_bit set, so that its next park point throws weft::cancelled and its destructors
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
        if (shutting_down(g) || !g->parking) continue;
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
      // The same request a canceller makes (the stop token fires too), delivered by the claim
      // above; shutdown_bit makes it one no handler can outlive.
      g->cancel_bits.fetch_or(cancel_requested_bit | shutdown_bit, std::memory_order_relaxed);
      if (cancel_extra* ex = g->extra.load(std::memory_order_acquire)) ex->source.request_stop();
      run_green(w0, g);
    }
  }
  std::size_t left = 0;
  for (auto& v : workers_)
    for (green_thread* g = v->registry; g; g = g->reg_next) ++left;
  if (left) {
    std::fprintf(stderr,
                 "weft: %zu green thread(s) parked again while being unwound at the end of "
                 "weft::run (e.g. caught weft::cancelled without rethrowing); they are leaked\n",
                 left);
  }
  tls_worker = nullptr;
}

void scheduler::fill_stats(runtime_stats& out) const noexcept {
  out.workers = worker_count();
  out.poller = poller_name(poller_);
  for (auto& v : workers_) {
    out.ring_reads += v->ring_reads.load(std::memory_order_relaxed);
    out.ring_sends += v->ring_sends.load(std::memory_order_relaxed);
    out.ring_accepts += v->ring_accepts.load(std::memory_order_relaxed);
  }
  out.spare_workers = active_spares_.load(std::memory_order_relaxed);
  std::uint64_t created = external_created_.load(std::memory_order_relaxed);
  std::uint64_t finished = external_finished_.load(std::memory_order_relaxed);
  for (auto& v : workers_) {
    created += v->created.load(std::memory_order_relaxed);
    finished += v->finished.load(std::memory_order_relaxed);
    out.steals += v->steals.load(std::memory_order_relaxed);
    out.forced_yields += v->forced_yields.load(std::memory_order_relaxed);
    out.private_queues_opened += v->revocations.load(std::memory_order_relaxed);
  }
  out.green_threads_created = created;
  out.green_threads_live = created - finished;
  std::uint64_t tasks_created = external_tasks_created_.load(std::memory_order_relaxed);
  std::uint64_t tasks_finished = external_tasks_finished_.load(std::memory_order_relaxed);
  for (auto& v : workers_) {
    tasks_created += v->tasks_created.load(std::memory_order_relaxed);
    tasks_finished += v->tasks_finished.load(std::memory_order_relaxed);
  }
  out.tasks_created = tasks_created;
  out.tasks_live = tasks_created - tasks_finished;
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
