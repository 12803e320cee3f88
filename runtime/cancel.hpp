// Internal: delivering a cancellation request to a parked green thread.
//
// Every park publishes its waiter; the canceller decides whether that wait may be cancelled
// (not a mutex, no cancel_shield). The protocol is a Dekker pair, asymmetric so that a park pays
// plain stores and loads only:
//   parking side (the worker, once the switch away is complete, before the park's locks are
//   released or its timer queued): cancel_wait = w; fence; if a request is pending, claim w
//   itself when the wait is cancellable.
//   resuming side (the green thread, back from the park): cancel_wait = null; fence; wait while
//   cancel_holds != 0, so that no canceller still holds a pointer to its dying waiter.
//   canceller: set cancel_requested_bit; ++cancel_holds; barrier; w = cancel_wait; if the wait
//   is cancellable and no notifier announced a claim without CAS (waiter::notifying, the other
//   half of a second Dekker pair: channels/chan_core.cpp), claim w with `cancelled` and ready
//   the green thread if the claim wins; --cancel_holds.
// The canceller's barrier is membarrier(2), or where that is missing a TLB shoot-down (mprotect
// of a page: the IPIs serialize every core running the process), so the two fast sides' fences
// are compiler fences only; under TSan, which knows neither, every side fences in full.
// Invariants:
//   - a waiter is published only while its green thread is switched out, so whoever wins the
//     claim may ready it at once;
//   - either the canceller sees the published waiter or the parking side sees the request (never
//     neither), so a request never sleeps through a wait;
//   - a canceller dereferences a published waiter only as a holder, and the green thread does
//     not leave the park while one is inside: what it reads of the park (the waiter, the wait
//     kind, the shield depth) stays as it was published;
//   - the caller of cancel_begin/cancel_batch::claim keeps the record alive (it holds the lock of
//     the scope or join state that the green thread must take before it ends).
#pragma once

#include <atomic>
#include <stop_token>
#include <vector>

#include "green_thread.hpp"

namespace weft::detail {

struct cancel_extra {
  std::stop_source source;
};

#if WEFT_TSAN
// TSan does not model fences: a seq_cst RMW on one shared word, which both sides of a Dekker
// pair perform, orders them in a way it sees (as find_work.cpp's store_load_barrier does).
inline void tsan_visible_fence() noexcept {
  static std::atomic<int> word{0};
  word.fetch_add(0, std::memory_order_seq_cst);
}
#endif

inline void cancel_fence_fast() noexcept {
#if WEFT_TSAN
  tsan_visible_fence();
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// A pending request seen while publishing `w`: claims it if the wait may be cancelled.
bool claim_for_pending_request(green_thread* g, waiter* w) noexcept;

// The parking side. True when a request was pending and this call claimed `w` for it: the caller
// readies `g` once it is done with the park.
inline bool publish_wait(green_thread* g, waiter* w) noexcept {
  g->cancel_wait.store(w, std::memory_order_release);
  cancel_fence_fast();
  if (!cancel_requested(g)) [[likely]]
    return false;
  return claim_for_pending_request(g, w);
}

void wait_for_cancellers(green_thread* g) noexcept;

// The resuming side: after this, no canceller can reach the park's waiter.
inline void leave_wait(green_thread* g) noexcept {
  g->cancel_wait.store(nullptr, std::memory_order_relaxed);
  cancel_fence_fast();
  if (g->cancel_holds.load(std::memory_order_acquire) != 0) [[unlikely]]
    wait_for_cancellers(g);
}

// The canceller's side, in steps so that one barrier serves a whole batch (a scope): under the
// lock that keeps the records alive, cancel_begin on each, cancel_barrier once, then
// batch.claim on each; after unlocking, batch.deliver(). A claimed green thread stays parked (and
// its record alive) until deliver() readies it, which happens only after its stop callbacks ran:
// they are the user's code (hence outside the lock), and a green thread that runs again may
// destroy its std::stop_callback before it could fire.
void cancel_begin(green_thread* g) noexcept;
void cancel_barrier() noexcept;
struct cancel_batch {
  std::vector<std::stop_source> stops;
  green_thread* woken = nullptr;  // claimed, chained by `next` (a parked green thread's is free)

  void claim(green_thread* g) noexcept;
  void deliver() noexcept;
};

// Frees what cancel_extra the green thread allocated; run as it ends.
void release_cancel_extra(green_thread* g) noexcept;

}  // namespace weft::detail
