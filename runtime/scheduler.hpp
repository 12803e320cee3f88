// The M:N scheduler (Go's G/M/P): workers with local rings and a run-next slot, a global queue,
// work stealing, spinning workers and futex parking. See docs/design.md for the picture.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "blocking_pool.hpp"
#include "cancel.hpp"
#include "chaos.hpp"
#include "context_switch.hpp"
#include "global_queue.hpp"
#include "green_thread.hpp"
#include "netpoll/ring.hpp"
#include "queue_mode.hpp"
#include "record_cache.hpp"
#include "run_queue.hpp"
#include "stack_pool.hpp"
#include "timer_heap.hpp"
#include "weft/config.hpp"
#include "weft/detail/spinlock.hpp"
#include "weft/stats.hpp"

namespace weft::detail {

class scheduler;
struct eh_globals_layout;

struct alignas(64) worker {
  worker(scheduler& s, unsigned idx, stack_depot& depot) : sched(&s), index(idx), stacks(depot) {}

  scheduler* sched;
  unsigned index;
  green_thread* current = nullptr;  // the green thread running on this worker, if any
  bool sole = false;  // the only worker of a single-worker runtime (read without more loads)
  // Taken from the queues for the loop to run first: a task found by hand_off (it needs the
  // worker's own stack), or a green thread found after a task. Set only until the loop's next
  // look, which follows at once.
  green_thread* handed = nullptr;
  fcontext sched_ctx = nullptr;  // the scheduler loop, while a green thread runs
  switch_annotations sched_annotations;
  std::uint32_t tick = 0;
  std::int64_t recent_time = 0;          // coarse steady-clock ns, refreshed every epoch
  std::atomic<std::uint32_t> slices{0};  // green threads run so far; thieves read it
  // The monitor's verdict on moving this worker's green threads to another core (find_work.cpp):
  // false while they run slices much shorter than a move costs, or talk to each other through
  // shared channels more than they work (runtime/monitor.cpp).
  std::atomic<bool> movable{true};
  // Operations on a channel last used on another worker (note_user).
  std::atomic<std::uint32_t> shared_handovers{0};
  // Set by the monitor when one slice has run for a whole monitor period: the running green
  // thread yields at its next budget point (Go's preempt flag, checked where budget is spent).
  std::atomic<bool> preempt{false};
  std::uint32_t runnext_streak = 0;
  std::uint32_t epoch_seen = 0;  // the monitor's scheduling epoch at this worker's last check
  std::uint64_t rng;
  bool spinning = false;

  run_queue local;
  // The green thread to run next (spawned or woken by the running one). Thieves may take it, so
  // it is atomic; in single-worker mode, and in private mode, plain loads and stores suffice.
  alignas(64) std::atomic<green_thread*> runnext{nullptr};

  // Own cache lines: thieves read `timers` on every steal attempt, while the owner writes
  // runnext and its cache constantly.
  alignas(64) timer_heap timers;
  alignas(64) stack_cache stacks;
  record_cache records;  // records of green threads that finished here, for the next spawns
  frame_cache frames;    // frames of tasks (and of the coroutines they awaited) freed here

  // Parking (owner sleeps on wake_word; a waker pops it from the idle list and sets the word).
  alignas(64) std::atomic<std::uint32_t> wake_word{0};
  bool idle = false;                 // on the idle list (under scheduler::idle_lock_)
  bool woken_spinning = false;       // set by the waker: start as a spinning worker
  std::atomic<bool> polling{false};  // parked in epoll or its ring rather than on its futex
  // Time asleep in park_worker: the total of past sleeps, and when the current one began (0:
  // awake). The monitor judges a worker's slices by the time it was awake (monitor.cpp).
  std::atomic<std::int64_t> slept_ns{0};
  std::atomic<std::int64_t> asleep_since{0};
  // Its io_uring ring (netpoll/ring.hpp) under that backend; null under epoll and on spares.
  worker_ring* ring = nullptr;
  worker* next_idle = nullptr;

  // A spare worker (Go's handoff) runs only while another worker is stuck in one green thread;
  // otherwise it is dormant on wake_word. Its thread starts on its first activation.
  bool spare = false;
  std::atomic<bool> spare_active{false};
  bool thread_started = false;  // the monitor's only

  // Registry of started, unfinished green threads that first ran on this worker.
  spinlock registry_lock;
  green_thread* registry = nullptr;

  // Ids handed out in blocks so spawning touches no shared counter.
  std::uint64_t id_next = 0, id_end = 0;

  // Counters read by stats(): written by this worker only.
  std::atomic<std::uint64_t> created{0}, finished{0}, steals{0}, forced_yields{0};
  std::atomic<std::uint64_t> tasks_created{0}, tasks_finished{0};  // stackless ones, of those
  std::atomic<std::uint64_t> parks{0}, resumes{0};  // parked now = Σparks − Σresumes
  std::atomic<std::uint64_t> ring_reads{0};         // reads that waited on its ring
  std::atomic<std::uint64_t> ring_sends{0};         // sends queued on its ring
  std::atomic<std::uint64_t> ring_accepts{0};       // connections from a multishot accept

  // This thread's errno and C++ exception globals (thread_state.hpp).
  int* errno_slot = nullptr;
  int os_tid = 0;  // the kernel's id of this worker's thread (gdb's LWP), for tools/weft-gdb.py
  struct eh_globals_layout* eh_globals = nullptr;

  std::vector<spinlock*> unlock_scratch;  // park's locks, copied before they are released

  std::thread thread;

  // Private mode (runtime/queue_mode.hpp). Its own line: it reads `plain_ok` and brackets
  // each plain operation with `in_op`; the monitor clears `plain_ok` to revoke. Set for good
  // in single-threaded mode.
  alignas(64) std::atomic<bool> plain_ok{false};
  std::atomic<bool> in_op{false};
  // The thieves' line: they count themselves in before they touch the queue.
  alignas(64) std::atomic<bool> stealable{true};
  std::atomic<std::uint32_t> stealers{0};
  spinlock mode_lock;  // one mode change at a time: the owner's, or the monitor's revocation
  std::atomic<std::uint64_t> revocations{0};  // the monitor's, read by stats()
};

// Go's constants: check the global queue every 61 ticks so it cannot starve; at most 3 runnext
// runs in a row (Tokio) so two green threads waking each other cannot starve the rest.
inline constexpr std::uint32_t global_check_interval = 61;
// Under io_uring, how many switches a busy worker lets queued sends wait before entering.
inline constexpr std::uint32_t ring_send_interval = 16;
// Under io_uring with several workers, how long an idle worker with requests in flight watches
// its ring before it sleeps in the kernel.
inline constexpr std::int64_t ring_spin_ns = 20'000;
inline constexpr std::uint32_t runnext_cap = 3;

class scheduler {
 public:
  explicit scheduler(const config& cfg);
  ~scheduler();

  const config& cfg() const noexcept { return cfg_; }
  poller_kind poller() const noexcept { return poller_; }
  bool single() const noexcept { return single_; }
  // The configured workers (spares not included): the parallelism the program asked for.
  unsigned worker_count() const noexcept { return nworkers_; }
  worker& worker_at(unsigned i) noexcept { return *workers_[i]; }

  // Runs the main loop on the calling thread (as worker 0) after starting the others; returns
  // once stop() was called and every green thread is gone.
  void run_workers();
  void stop() noexcept;
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }

  // A record with room for a callable of `storage_size` bytes aligned to `storage_align`;
  // `caller` is the calling thread's worker (current_worker()), null on an OS thread.
  green_thread* create(worker* caller, std::size_t storage_size, std::size_t storage_align,
                       const task_vtable* vt, const spawn_options& o);
  void destroy_unstarted(green_thread* g) noexcept;
  static constexpr std::size_t max_name_length = 31;  // spawn_options::name is cut there
  // Where a green thread made runnable on the calling worker goes: `next` (spawned or woken by
  // the running green thread: runs next, Go's runnext; the one it displaces goes to the back of
  // the ring), or `back`. Spawns go to runnext too: in fork-join, the child a parent then waits
  // for is the one run next, depth first (the back of the ring made fib(35) 20% slower at 2
  // workers here, as parents ran older siblings first and kept more stacks alive).
  enum class placement : std::uint8_t { back, next };
  // Makes `g` runnable: on `w` (the calling worker, may be null) or through the global queue.
  void make_runnable(green_thread* g, worker* w, placement where) noexcept;

  void fill_stats(runtime_stats& out) const noexcept;
  // Queues a callback timer (weft::after, weft::ticker) on the calling worker's heap, or from an
  // OS thread on worker 0's, waking a sleeping worker so that it sees the new deadline.
  void add_timer(timer_node& t) noexcept;

  // The fast path of yield, park and exit (g->reason says which): switches from `g` straight to
  // the next green thread queued on `w`, without a trip through the scheduler loop. False when
  // the loop has something to do first (timers, the global queue's turn, shutdown) or nothing
  // else is queued.
  bool hand_off(worker& w, green_thread* g) noexcept;
  // Run by every green thread right after it is switched to, with what the switcher passed.
  void resumed(transfer t) noexcept;

  stack_depot& depot() noexcept { return depot_; }
  blocking_pool& blocking() noexcept { return blocking_; }

  // Introspection (runtime/introspect.cpp). A dump lists every started green thread with its
  // name and what it waits for; from a signal handler it only try-locks.
  struct dump_sink {
    void (*write)(void* ctx, const char* text, std::size_t size);
    void* ctx;
  };
  void write_dump(const dump_sink& out, bool from_signal) const noexcept;
  std::uint64_t parked_count() const noexcept;

 private:
  friend struct scheduler_access;
  void worker_main(worker& w);
  green_thread* find_runnable(worker& w);
  green_thread* find_runnable_spare(worker& w);  // runtime/spare_worker.cpp
  void retire_spare(worker& w);
  bool activate_spare();  // the monitor's: false if every spare is active already
  timer_heap& timer_home(worker& w) noexcept { return w.spare ? workers_[0]->timers : w.timers; }
  // The owner's end of its queues (inline: every switch goes through them).
  green_thread* take_local(worker& w);
  green_thread* take_local_plain(worker& w);
  // At a schedule point: private mode while no other worker may take this one's green threads.
  void sync_queue_mode(worker& w) noexcept {
    if (!private_queues_ || w.spare) return;
    const bool want = !w.movable.load(std::memory_order_relaxed);
    if (want != w.plain_ok.load(std::memory_order_relaxed)) change_queue_mode(w, want);
  }
  void change_queue_mode(worker& w, bool to_private) noexcept;  // runtime/queue_mode.cpp
  // Brackets an owner's plain operation on its queues: false in shared mode (use the atomics).
  // Announces the operation, then looks: a revoker whose membarrier came after this load finds
  // `in_op` set and waits; one whose came before made the load see false.
  static bool begin_plain(worker& w) noexcept {
    w.in_op.store(true, std::memory_order_relaxed);
    // The revoker's membarrier orders the store before the load for us; the compiler must not.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    chaos::spin();
    if (w.plain_ok.load(std::memory_order_relaxed)) return true;
    w.in_op.store(false, std::memory_order_relaxed);
    return false;
  }
  static void end_plain(worker& w) noexcept { w.in_op.store(false, std::memory_order_release); }
  green_thread* steal(worker& w);
  void push_local(worker& w, green_thread* g) noexcept {
    if (!w.local.push(g)) push_overflow(w, g);
  }
  void push_overflow(worker& w, green_thread* g) noexcept;
  void fire_timers(worker& w, timer_heap& heap, std::int64_t now);
  void run_green(worker& w, green_thread* g);
  void run_task(worker& w, green_thread* g);
  void run_task_slice(worker& w, green_thread* g);
  bool loop_turn_due(worker& w) const noexcept;
  void prepare_first_run(worker& w, green_thread* g);
  void abandon_unstarted(worker& w, green_thread* g) noexcept;
  void finish(worker& w, green_thread* g) noexcept;
  // Gives a finished (or never started) record back: to `w`'s cache if `w` is the calling
  // worker of this runtime, else to the allocator.
  void free_record(green_thread* g, worker* w) noexcept;
  // The common cases inline (a registered green thread that yielded, or parked holding one lock
  // and no deadline), the rest not.
  void after_switch(worker& w, green_thread* g) noexcept {
    if (g->home) [[likely]] {
      if (g->reason == switch_reason::yield) {
        push_local(w, g);
        return;
      }
      if (g->reason == switch_reason::park) {
        const park_state& p = *g->parking;
        if (p.lock_count == 1 && !p.timer) {
          spinlock* held = p.locks[0];
          chaos::spin();  // a waker spins on the lock meanwhile
          // Published, the waiter may be claimed by a canceller (and g run) before the unlock:
          // nothing of `p` is read after this.
          if (publish_wait(g, p.on)) [[unlikely]] {
            held->unlock();
            make_runnable(g, &w, placement::back);
            return;
          }
          held->unlock();  // from here g may run, and `p` is gone: nothing after this
          return;
        }
      }
    }
    after_switch_slow(w, g);
  }
  void after_switch_slow(worker& w, green_thread* g) noexcept;
  void park_worker(worker& w);
  bool leave_idle(worker& w);
  void stop_spinning(worker& w);
  // Wakes an idle worker to spin if none spins. Publishing work and reading the idle count
  // need a StoreLoad barrier between them; a caller whose last store was a seq_cst RMW has one.
  void wake_idle_worker(bool after_full_barrier = false) noexcept;
  // False while `v` runs only green threads too short to be worth moving to another core.
  static bool worth_moving_from(const worker& v) noexcept;
  void unpark(worker& w) noexcept;
  worker* pop_idle() noexcept;  // takes a worker off the idle list (null: none)
  bool poll_network(worker& w) noexcept;
  bool park_in_poller(worker& w, std::int64_t deadline);
  void park_in_ring(worker& w, std::int64_t deadline);
  void wake_from_poll(worker& w, green_chain& ready);
  void queue_polled(worker& w, green_chain& ready) noexcept;
  bool ring_pass(worker& w) noexcept;
  void open_ring(worker& w) noexcept;
  void close_ring(worker& w) noexcept;
  bool work_for(const worker& w) const noexcept;  // anything `w` may take now
  std::int64_t earliest_timer() const noexcept;
  void unwind_remaining();
  void register_thread(worker& home, green_thread* g) noexcept;
  // Deadlock detection: called by a worker about to sleep with no timer pending. Returns the
  // deadline to sleep until (a grace period while a deadlock is suspected), or ends the
  // program when it is certain.
  std::int64_t check_deadlock(std::int64_t deadline) noexcept;
  bool still_all_asleep() const noexcept;
  [[noreturn]] void report_deadlock() const noexcept;
  void start_introspection();
  void stop_introspection() noexcept;
  void trace_loop(unsigned interval_ms);
  // The monitor thread (runtime/monitor.cpp).
  void start_monitor();
  void stop_monitor() noexcept;
  void monitor_loop();
  bool calm(unsigned stuck, bool work_held) const noexcept;
  void note_network_polled() noexcept;
  void wake_one() noexcept;
  bool is_idle(worker& w) noexcept;  // on the idle list now (takes idle_lock_)  // for work queued
                                     // on the global queue from outside the workers
  // True once per monitor epoch: time to look at the network and the global queue.
  bool epoch_passed(worker& w) const noexcept {
    // Acquire: a worker that sees the new epoch sees the judgements made before it.
    const std::uint32_t e = sched_epoch_.load(std::memory_order_acquire);
    return e != w.epoch_seen;
  }
  void unregister_thread(green_thread* g) noexcept;
  friend void* task_frame_alloc(std::size_t size);
  friend void task_frame_free(void* p, std::size_t size) noexcept;

  config cfg_;
  poller_kind poller_ = poller_kind::epoll;
  bool single_;
  bool private_queues_ = false;  // workers may go private (M:N, membarrier available)
  bool cache_records_ = false;   // reuse records per worker (not under the sanitizers)
  unsigned nworkers_ = 0;
  std::atomic<unsigned> stuck_workers_{0};  // workers the monitor sees stuck in one slice
  std::atomic<unsigned> active_spares_{0};
  std::atomic<unsigned> started_spares_{0};
  std::atomic<unsigned> rings_pending_{0};  // workers still making their io_uring rings
  stack_depot depot_;
  std::vector<std::unique_ptr<worker>> workers_;
  global_queue global_;
  alignas(64) std::atomic<int> nspinning_{0};
  std::atomic<int> nidle_{0};
  spinlock idle_lock_;
  worker* idle_head_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> external_created_{0}, external_finished_{0};  // from OS threads
  std::atomic<std::uint64_t> external_tasks_created_{0}, external_tasks_finished_{0};
  std::atomic<int> external_wakers_{0};             // OS threads inside make_runnable
  std::atomic<std::uint64_t> suspect_snapshot_{0};  // progress seen when a deadlock was suspected
  std::atomic<std::int64_t> suspect_since_{0};
  std::thread tracer_;  // WEFT_TRACE=schedtrace:<ms>
  std::atomic<std::uint32_t> tracer_stop_{0};
  bool sigquit_installed_ = false;
  std::thread monitor_;
  std::atomic<std::uint32_t> monitor_stop_{0};
  std::atomic<std::int64_t> last_network_poll_{0};
  alignas(64) std::atomic<std::uint32_t> sched_epoch_{0};  // advanced by the monitor; read-mostly
  char epoch_pad_[60];
  // Last member: destroyed first, joining its threads, while the rest is still whole.
  blocking_pool blocking_;
};

// Single-threaded or private mode: nobody else touches the queues.
inline green_thread* scheduler::take_local_plain(worker& w) {
  green_thread* g = w.runnext.load(std::memory_order_relaxed);
  if (g) {
    w.runnext.store(nullptr, std::memory_order_relaxed);
    if (++w.runnext_streak <= runnext_cap || w.local.empty()) return g;
    push_local(w, g);
  }
  w.runnext_streak = 0;
  return w.local.pop_unshared();
}

inline green_thread* scheduler::take_local(worker& w) {
  if (begin_plain(w)) {  // private, or single-threaded
    green_thread* g = take_local_plain(w);
    end_plain(w);
    return g;
  }
  green_thread* g = w.runnext.load(std::memory_order_relaxed);
  if (g) g = w.runnext.exchange(nullptr, std::memory_order_acq_rel);
  if (g) {
    // At most runnext_cap runs in a row (Tokio), so that two green threads waking each other
    // cannot starve the rest: then to the back, and the queue's head runs.
    if (++w.runnext_streak <= runnext_cap || w.local.empty()) return g;
    push_local(w, g);
  }
  w.runnext_streak = 0;
  return w.local.pop();
}

// The worker the calling OS thread runs (null on other threads). Not inlined: a green thread
// that migrates must re-read it after every switch.
worker* current_worker() noexcept;
green_thread* current_green() noexcept;
// The runtime that is running now, for calls from plain OS threads (null if none).
scheduler* active_scheduler() noexcept;

// coop_point() for a caller that knows it runs as `w.current` on worker `w`.
void coop_point_on(worker& w);

// Switches the calling green thread back to its worker's loop, which does what `reason` says.
void switch_out(green_thread* g, switch_reason reason) noexcept;

}  // namespace weft::detail
