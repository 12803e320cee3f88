// The type-erased parts of channels: waiter queues, hand-off, close, parking.
#include <algorithm>

#include "weft/detail/chan_core.hpp"

#include "../runtime/cancel.hpp"

namespace weft::detail {

void node_queue::push_front(chan_node& n) noexcept {
  n.prev = nullptr;
  n.next = head_;
  if (head_) {
    head_->prev = &n;
  } else {
    tail_ = &n;
  }
  head_ = &n;
  n.linked = true;
  size_.store(size_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void node_queue::remove(chan_node& n) noexcept {
  if (!n.linked) return;
  if (n.prev) {
    n.prev->next = n.next;
  } else {
    head_ = n.next;
  }
  if (n.next) {
    n.next->prev = n.prev;
  } else {
    tail_ = n.prev;
  }
  n.prev = n.next = nullptr;
  n.linked = false;
  size_.store(size_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

namespace {

// claim_pending() without a locked instruction, for the holder of a channel's lock held through
// its bias (no other lock holder can claim the waiter meanwhile) and an exclusive waiter: no
// timer can claim it, and a canceller on the worker of a single-worker runtime (which skips its
// barrier) runs on this thread (runtime/park.cpp settle_exclusive). What is left is a canceller
// on another thread, with which the claim forms a Dekker pair: it announces itself in
// `notifying`, then looks for a request; a canceller sets the request, fences in full
// (cancel_barrier), then backs off if it sees the announcement. One that saw no announcement
// may claim with a CAS, and then the request is visible here, so this side claims with a CAS too.
bool claim_through_bias(waiter& w) noexcept {
  if (w.state.load(std::memory_order_relaxed) != 0) return false;
  w.notifying.store(1, std::memory_order_relaxed);
  cancel_fence_fast();
  if (w.thread && cancel_requested(w.thread)) return w.claim_pending();
  w.state.store(waiter::claiming, std::memory_order_relaxed);
  return true;
}

}  // namespace

chan_node* node_queue::claim_front(bool through_bias) noexcept {
  while (chan_node* n = head_) {
    remove(*n);
    waiter& w = *n->w;
    // A select's other case (or its timeout, or shutdown) may have won already: skip it.
    if (through_bias && w.exclusive ? claim_through_bias(w) : w.claim_pending()) return n;
  }
  return nullptr;
}

green_thread* finish_node(chan_node& n, chan_result r) noexcept {
  waiter& w = *n.w;
  // Read before complete(): an OS-thread waiter may return (and its frame die) right after.
  green_thread* g = w.thread;
  n.result = r;
  w.payload = &n;  // which node won, for a select
  if (g) {
    w.complete(wake_reason::notified);
    return g;  // the caller readies it after unlocking
  }
  w.next = nullptr;
  release_claimed(&w, wake_reason::notified);  // completes and wakes, touching nothing after
  return nullptr;
}

chan_result park_on(chan_core& c, chan_node& n, node_queue& q) {
  const wake_reason why = park(*n.w, &c.lock, no_deadline,
                               &q == &c.recvq ? wait_reason::chan_receive : wait_reason::chan_send);
  if (why == wake_reason::notified) return n.result;
  // Cancelled: nobody claimed the node, so it is still queued; take it out before leaving.
  c.lock.lock();
  q.remove(n);
  c.lock.unlock();
  if (unwinding_for_shutdown()) throw_cancelled();
  return chan_result::cancelled;
}

chan_node* chan_core::close_locked() {
  if (closed) throw channel_closed("weft: close of closed channel");
  closed = true;
  chan_node* chain = nullptr;
  for (node_queue* q : {&recvq, &sendq}) {
    while (chan_node* n = q->claim_front(lock.held_through_bias())) {
      n->result = chan_result::closed;
      n->w->payload = n;
      n->next = chain;
      chain = n;
    }
  }
  return chain;
}

void release_nodes(chan_node* chain) noexcept {
  while (chain) {
    chan_node* next = chain->next;  // read first: the node dies once its owner wakes
    waiter* w = chain->w;
    w->next = nullptr;
    release_claimed(w, wake_reason::notified);
    chain = next;
  }
}

void block_forever() {
  waiter w;
  park(w, nullptr, no_deadline,
       wait_reason::forever);  // only shutdown (or, on an OS thread, nothing) ends this
  throw_cancelled();
}

}  // namespace weft::detail
