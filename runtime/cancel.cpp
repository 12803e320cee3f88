// Cancellation requests: the canceller's side of the protocol in cancel.hpp, cancel_shield and
// this_green_thread's queries.
#include "cancel.hpp"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>

#include "queue_mode.hpp"
#include "scheduler.hpp"
#include "weft/cancel.hpp"

namespace weft::detail {

namespace {

// A wait a request may end: not a mutex, and no cancel_shield. Read by a holder (or by the
// worker publishing the park), while the green thread cannot leave the park.
bool wait_is_cancellable(const green_thread* g) noexcept {
  return g->waiting_for.load(std::memory_order_relaxed) != wait_reason::mutex &&
         (g->cancel_bits.load(std::memory_order_relaxed) & shield_mask) == 0;
}

#if !WEFT_TSAN
// Where membarrier(2) is missing (old kernels, some sandboxes): taking access to a resident page
// away makes the kernel shoot down its TLB entries on every core that runs this process, by an
// interrupt that serializes each such core (.NET's FlushProcessWriteBuffers and folly's
// asymmetric barrier do the same).
void tlb_shootdown_barrier() noexcept {
  static std::mutex m;
  static void* page = [] {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("weft: mmap for the cancellation barrier");
      std::abort();
    }
    return p;
  }();
  std::lock_guard lk(m);
  if (::mprotect(page, 4096, PROT_READ | PROT_WRITE) != 0) std::abort();
  *static_cast<volatile char*>(page) = 1;  // resident, so removing access must flush it
  if (::mprotect(page, 4096, PROT_NONE) != 0) std::abort();
}
#endif

}  // namespace

void wait_for_cancellers(green_thread* g) noexcept {
  unsigned spins = 0;
  while (g->cancel_holds.load(std::memory_order_acquire) != 0) spin_pause(spins);
}

bool claim_for_pending_request(green_thread* g, waiter* w) noexcept {
  return wait_is_cancellable(g) && w->claim(wake_reason::cancelled);
}

void cancel_begin(green_thread* g) noexcept {
  g->cancel_bits.fetch_or(cancel_requested_bit, std::memory_order_relaxed);
  g->cancel_holds.fetch_add(1, std::memory_order_relaxed);
}

void cancel_barrier() noexcept {
#if WEFT_TSAN
  tsan_visible_fence();  // both sides fence in full
#else
  // On the only worker of a single-threaded runtime no park can be in progress concurrently.
  if (worker* w = current_worker(); w && w->sched->single()) return;
  if (private_queues_supported()) {
    asymmetric_barrier();
  } else {
    tlb_shootdown_barrier();
  }
#endif
}

void cancel_batch::claim(green_thread* g) noexcept {
  waiter* w = g->cancel_wait.load(std::memory_order_acquire);
  // A notifier that announced a claim without CAS (chan_core.cpp) has it: back off.
  if (w && wait_is_cancellable(g) && w->notifying.load(std::memory_order_relaxed) == 0 &&
      w->claim(wake_reason::cancelled)) {
    g->next = woken;
    woken = g;
  }
  if (cancel_extra* ex = g->extra.load(std::memory_order_acquire)) {
    try {
      stops.push_back(ex->source);
    } catch (const std::bad_alloc&) {
      ex->source.request_stop();  // no memory to defer it: run the callbacks here
    }
  }
  g->cancel_holds.fetch_sub(1, std::memory_order_release);
}

void cancel_batch::deliver() noexcept {
  for (std::stop_source& s : stops) s.request_stop();
  stops.clear();
  while (green_thread* g = woken) {
    woken = g->next;
    ready(g);
  }
}

void release_cancel_extra(green_thread* g) noexcept {
  if (cancel_extra* ex = g->extra.load(std::memory_order_acquire)) {
    ex->~cancel_extra();
    runtime_free(ex, sizeof(cancel_extra));
    g->extra.store(nullptr, std::memory_order_relaxed);
  }
}

bool unwinding_for_shutdown() noexcept {
  green_thread* g = current_green();
  return g && shutting_down(g);
}

}  // namespace weft::detail

namespace weft {

cancel_shield::cancel_shield() noexcept {
  if (detail::green_thread* g = detail::current_green()) {
    if ((g->cancel_bits.load(std::memory_order_relaxed) & detail::shield_mask) ==
        detail::shield_mask) {
      std::fputs("weft: cancel_shield nested more than 255 deep\n", stderr);
      std::abort();
    }
    g->cancel_bits.fetch_add(1, std::memory_order_relaxed);  // a canceller may set a bit meanwhile
  }
}

cancel_shield::~cancel_shield() {
  if (detail::green_thread* g = detail::current_green())
    g->cancel_bits.fetch_sub(1, std::memory_order_relaxed);
}

namespace this_green_thread {

bool cancel_requested() noexcept {
  detail::green_thread* g = detail::current_green();
  if (!g) return false;
  if (g->cancel_bits.load(std::memory_order_relaxed) &
      (detail::cancel_requested_bit | detail::shutdown_bit))
    return true;
  // A passed deadline is no request: it ends waits while it bounds them (a scope's deadline
  // stops bounding its creator when the scope ends), so the stop token does not fire for it.
  return (g->cancel_bits.load(std::memory_order_relaxed) & detail::has_deadline_bit) &&
         detail::now_ns() >= g->deadline;
}

void throw_if_cancelled() {
  detail::green_thread* g = detail::current_green();
  if (g && (g->cancel_bits.load(std::memory_order_relaxed) & detail::shield_mask) == 0 &&
      cancel_requested())
    throw cancelled{};
}

std::stop_token stop_token() {
  detail::green_thread* g = detail::current_green();
  if (!g) return {};
  detail::cancel_extra* ex = g->extra.load(std::memory_order_relaxed);
  if (!ex) {
    void* mem = detail::runtime_alloc(sizeof(detail::cancel_extra));
    ex = ::new (mem) detail::cancel_extra;
    // The other half of cancel_begin/cancel_finish's Dekker pair: the canceller either sees the
    // source here, or this sees its request.
    g->extra.store(ex, std::memory_order_seq_cst);
    if (g->cancel_bits.load(std::memory_order_seq_cst) &
        (detail::cancel_requested_bit | detail::shutdown_bit))
      ex->source.request_stop();
  }
  return ex->source.get_token();
}

std::int64_t deadline_ns() noexcept {
  detail::green_thread* g = detail::current_green();
  return g ? g->deadline : detail::no_deadline;
}

}  // namespace this_green_thread
}  // namespace weft
