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

// A park in progress. It lives in the parking green thread's own frame (stacks never move), so
// the record pays one pointer for it; the scheduler releases the locks and queues the timer
// only once the switch away is complete.
struct park_state {
  waiter* on = nullptr;
  spinlock* const* locks = nullptr;
  std::uint32_t lock_count = 0;
  timer_node* timer = nullptr;  // queued after the switch; null without a deadline
};

// What only some green threads need for cancellation, allocated on first use by the green
// thread itself and freed when it ends: the source of this_green_thread::stop_token().
struct cancel_extra;

// Kept small: a million parked green threads hold a million of these, and a record that spans
// fewer cache lines is cheaper to hand to another worker. 192 bytes here (168 before
// cancellation), so with a callable of one pointer the whole allocation fits 224 bytes.
struct green_thread {
  fcontext ctx = nullptr;        // saved context while not running; null before the first run
  green_thread* next = nullptr;  // run-queue link
  worker* running_on = nullptr;  // the worker currently running it (valid while running)
  scheduler* sched = nullptr;

  // Registry of green threads that have switched away alive at least once (for shutdown and
  // dumps), kept by the worker they ran on then; null `home` until then.
  worker* home = nullptr;
  green_thread* reg_prev = nullptr;
  green_thread* reg_next = nullptr;

  std::uint64_t id = 0;
  const task_vtable* vtable = nullptr;
  void* stack_base = nullptr;  // lowest address of the mapping (guard page first)
  std::size_t stack_mapped = 0;
  park_state* parking = nullptr;  // set while parked

  std::uint32_t budget = 0;
  std::uint32_t unconstrained_depth = 0;  // weft::unconstrained scopes alive: no budget spent
  std::uint32_t alloc_size = 0;           // of this record with its callable and name
  // Cancellation (runtime/cancel.hpp). cancel_bits holds everything a park must honour, so that
  // a park with none of it tests one word: the cancel_shield depth (the green thread's own),
  // a request (cancellers), the runtime's end, and whether `deadline` is set. A canceller counts
  // itself into cancel_holds and claims the waiter published in cancel_wait; the green thread
  // publishes its waiter only once switched out, and leaves a park only when cancel_holds is 0
  // (no visitor, and the worker done queuing the park's timer: parker_busy_hold).
  std::atomic<std::uint32_t> cancel_bits{0};
  std::uint16_t storage_off = 0;  // where the callable starts, from `this`
  std::atomic<std::uint16_t> cancel_holds{0};
  std::uint8_t alloc_align = 0;  // alignment asked of the allocator (0: its default)
  bool unwinding = false;        // shutdown's unwinding is (or was) in flight: parks work normally
  switch_reason reason = switch_reason::yield;
  // For dumps and the deadlock report (read by other threads, hence atomic, written relaxed).
  std::atomic<wait_reason> waiting_for{wait_reason::none};

  switch_annotations annotations;
  std::uint32_t stack_size = 0;  // reservation requested (0: the runtime default)

  std::atomic<waiter*> cancel_wait{nullptr};
  std::int64_t deadline = no_deadline;  // its scopes' earliest; bounds every cancellable wait
  std::atomic<cancel_extra*> extra{nullptr};

  std::atomic<std::int64_t> parked_since{0};  // coarse steady-clock ns
  const char* name = nullptr;  // spawn_options::name, stored after the callable; null if none

  // Per-OS-thread state carried across switches (thread_state.hpp).
  int saved_errno = 0;
  unsigned int eh_uncaught = 0;
  void* eh_caught = nullptr;
  local_table* locals = nullptr;  // weft::local values, created on first use

  void* storage() noexcept { return reinterpret_cast<char*>(this) + storage_off; }
};

inline constexpr std::uint32_t shield_mask = 0xff;  // cancel_shield depth, at most 255
inline constexpr std::uint32_t cancel_requested_bit = 1u << 8;
inline constexpr std::uint32_t shutdown_bit = 1u << 9;  // weft::run is ending: unwind
inline constexpr std::uint32_t has_deadline_bit = 1u << 10;
inline constexpr std::uint16_t parker_busy_hold = 0x100;  // in cancel_holds; visitors below it

// A weft::task: runs on its worker's stack and parks by suspending its coroutine. Asked of the
// vtable (shared, immutable), which keeps the record within its 192 bytes.
inline bool is_task(const green_thread* g) noexcept {
  return g->vtable->stackless;
}

inline bool cancel_requested(const green_thread* g) noexcept {
  return g->cancel_bits.load(std::memory_order_relaxed) & cancel_requested_bit;
}
inline bool shutting_down(const green_thread* g) noexcept {
  return g->cancel_bits.load(std::memory_order_relaxed) & shutdown_bit;
}
// Sets the green thread's deadline (no_deadline: none); by itself, or before it first runs.
inline void set_deadline(green_thread* g, std::int64_t d) noexcept {
  g->deadline = d;
  if (d != no_deadline) {
    g->cancel_bits.fetch_or(has_deadline_bit, std::memory_order_relaxed);
  } else {
    g->cancel_bits.fetch_and(~has_deadline_bit, std::memory_order_relaxed);
  }
}

// A FIFO chain of green threads linked by `next`, built before it is handed over in one go (to
// the global queue, or to a local ring one by one).
struct green_chain {
  green_thread* head = nullptr;
  green_thread* tail = nullptr;
  std::uint32_t size = 0;
  // Of those, ones a poll woke from a finished send: they mostly go straight on to their next
  // wait, so they do not count as work worth waking another worker for.
  std::uint32_t brief = 0;

  void append(green_thread* g) noexcept {
    g->next = nullptr;
    if (tail)
      tail->next = g;
    else
      head = g;
    tail = g;
    ++size;
  }
};

}  // namespace weft::detail
