// The record of one green thread (Go's g). Allocated from the runtime allocator with the
// callable stored inline after it; its stack is taken only when it first runs.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "context_switch.hpp"
#include "timer_heap.hpp"
#include "weft/detail/task.hpp"
#include "weft/detail/waiter.hpp"

namespace weft::detail {

struct worker;
class scheduler;

// What a green thread asks of its worker when it switches back to the scheduler loop.
enum class switch_reason : std::uint8_t { yield, park, exit };

// weft::local values of one green thread, indexed by slot (runtime/local_storage.cpp).
struct local_table {
  struct entry {
    void* value = nullptr;
    void (*destroy)(void*) = nullptr;
  };
  std::vector<entry> entries;
  void destroy_all() noexcept;
};
// Destroys a green thread's weft::local values; run on its own stack as it ends.
void destroy_locals(green_thread* g) noexcept;

struct green_thread {
  fcontext ctx = nullptr;        // saved context while not running; null before the first run
  green_thread* next = nullptr;  // run-queue link
  worker* running_on = nullptr;  // the worker currently running it (valid while running)
  scheduler* sched = nullptr;

  // Registry of started green threads (for shutdown and dumps), per worker that first ran it.
  worker* home = nullptr;
  green_thread* reg_prev = nullptr;
  green_thread* reg_next = nullptr;

  std::uint64_t id = 0;
  const task_vtable* vtable = nullptr;
  std::size_t alloc_size = 0;
  std::size_t stack_size = 0;  // reservation requested (0: the runtime default)
  void* stack_base = nullptr;  // lowest address of the mapping (guard page first)
  std::size_t stack_mapped = 0;

  std::uint32_t budget = 0;
  std::uint32_t unconstrained_depth = 0;  // weft::unconstrained scopes alive: no budget spent
  bool cancel_requested = false;          // shutdown asked it to unwind
  bool unwinding = false;  // forced_unwind is (or was) in flight: parks work normally
  switch_reason reason = switch_reason::yield;

  // A park in progress: released only once the switch away is complete.
  waiter* parked_on = nullptr;
  spinlock* const* park_locks = nullptr;
  std::uint32_t park_lock_count = 0;
  timer_node timer;

  switch_annotations annotations;

  // For dumps and the deadlock report (read by other threads, hence atomic, written relaxed).
  std::atomic<wait_reason> waiting_for{wait_reason::none};
  std::atomic<std::int64_t> parked_since{0};  // coarse steady-clock ns
  char name[32] = {};                         // from spawn_options::name, truncated

  // Per-OS-thread state carried across switches (thread_state.hpp).
  int saved_errno = 0;
  unsigned int eh_uncaught = 0;
  void* eh_caught = nullptr;
  local_table* locals = nullptr;  // weft::local values, created on first use

  void* storage() noexcept { return reinterpret_cast<char*>(this) + storage_offset(); }
  static constexpr std::size_t storage_offset() noexcept {
    return (sizeof(green_thread) + 63) & ~std::size_t{63};
  }
};

}  // namespace weft::detail
