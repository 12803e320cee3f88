// weft::run and the entry points of the public API that reach the scheduler.
#include <algorithm>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "allocator.hpp"
#include "scheduler.hpp"
#include "weft/runtime.hpp"
#include "weft/stats.hpp"

namespace weft {
namespace detail {
namespace {

std::mutex g_last_stats_mutex;
runtime_stats g_last_stats;

// `w`: the caller's worker, null on an OS thread.
scheduler* scheduler_for_spawn(worker* w) {
  if (w) return w->sched;
  if (scheduler* s = active_scheduler()) return s;
  throw std::logic_error("weft::go/spawn: no runtime is running (call them inside weft::run)");
}

}  // namespace

void* allocate_task(std::size_t storage_size, std::size_t storage_align, const task_vtable* vt,
                    const spawn_options& opts, green_thread** out) {
  if (storage_align > 64)
    throw std::invalid_argument(
        "weft::go/spawn: callables aligned beyond 64 bytes are unsupported");
  worker* w = current_worker();  // once: it is a call (a green thread may change threads)
  green_thread* g = scheduler_for_spawn(w)->create(w, storage_size, storage_align, vt, opts);
  *out = g;
  return g->storage();
}

void free_unsubmitted_task(green_thread* g) noexcept {
  g->sched->destroy_unstarted(g);
}

void submit_task(green_thread* g) {
  worker* w = current_worker();
  // Spawned from a green thread: it runs next (Go's newproc), inheriting the spawner's worker.
  const bool from_green = w && w->current != nullptr;
  g->sched->make_runnable(g, w,
                          from_green ? scheduler::placement::next : scheduler::placement::back);
  // Spawning spends the spawner's budget: a loop that spawns a million green threads lets them
  // run every `coop_budget` spawns, so queues stay short and their records and stacks stay
  // in cache instead of a million of them waiting in memory.
  if (from_green) coop_point_on(*w);
}

int run_main(std::function<int()> main, const config& cfg) {
  if (current_worker()) throw std::logic_error("weft::run: called from inside a green thread");
  auto sched = std::make_unique<scheduler>(cfg);
  int rc = 0;
  std::exception_ptr error;
  auto body = [&] {
    try {
      rc = main();
    } catch (...) {  // weft::cancelled too (a scope's deadline that main did not catch)
      error = std::current_exception();
    }
    sched->stop();
  };
  using body_t = decltype(body);
  green_thread* g =
      sched->create(nullptr, sizeof(body_t), alignof(body_t), &task_of<body_t>::vtable,
                    named("main", std::max<std::size_t>(cfg.stack_size, main_stack_size)));
  ::new (g->storage()) body_t(std::move(body));
  sched->make_runnable(g, nullptr, scheduler::placement::back);
  sched->run_workers();
  {
    std::lock_guard lk(g_last_stats_mutex);
    g_last_stats = runtime_stats{};
    sched->fill_stats(g_last_stats);
  }
  sched.reset();
  if (error) std::rethrow_exception(error);
  return rc;
}

}  // namespace detail

bool in_green_thread() noexcept {
  return detail::current_green() != nullptr;
}

std::uint64_t this_green_thread_id() noexcept {
  detail::green_thread* g = detail::current_green();
  return g ? g->id : 0;
}

std::size_t trim() noexcept {
  detail::scheduler* s = detail::active_scheduler();
  return s ? s->depot().trim(0) : 0;
}

const char* stack_guards() noexcept {
  return detail::stack_guard_kind();
}

const char* runtime_allocator() noexcept {
  return detail::runtime_allocator_name();
}

runtime_stats stats(stats_detail what) noexcept {
  runtime_stats out;
  if (detail::scheduler* s = detail::active_scheduler()) {
    s->fill_stats(out);
    if (what == stats_detail::stack_memory)
      out.stack_bytes_committed = s->depot().committed_bytes();
    return out;
  }
  std::lock_guard lk(detail::g_last_stats_mutex);
  return detail::g_last_stats;
}

}  // namespace weft
