// The waiting side of the io_uring backend (ring.hpp): a green thread queues its request on its
// worker's ring and parks; the ring's owner completes it. Invariants are ring.hpp's; the one
// kept here: a call returns only once its request's completion has arrived.
#include <cerrno>
#include <stdexcept>

#include "ring.hpp"
#include "runtime/scheduler.hpp"
#include "weft/cancel.hpp"

namespace weft::detail {
namespace {

// Called after park() returned, with `lock` held (the descriptor's, or the op's); returns with
// it released. If the completion has not come (a deadline, a cancellation, close or a kick woke
// the green thread), cancels the request and waits for it: true then.
bool settle(ring_op& op, spinlock& lock, wait_reason what) {
  if (op.done) {
    lock.unlock();
    return false;
  }
  const worker* here = current_worker();
  const bool mine = here && here->ring == op.owner;
  if (mine) op.owner->queue_cancel(op);
  lock.unlock();
  if (!mine) op.owner->post_cancel(op);
  lock.lock();
  if (op.done) {
    lock.unlock();
    return true;
  }
  waiter drained;
  op.drain = &drained;
  weft::cancel_shield shield;  // this wait is the cancellation's own: nothing may end it
  park(drained, &lock, no_deadline, what);
  return true;
}

// What a request that ended early reports: its data if it got any (nothing is dropped), else
// why it ended.
ring_read_result outcome(const ring_op& op, bool early, wake_reason why, bool closed) {
  if (op.result != -ECANCELED || !early) return {op.result, io_wait_result::ready};
  switch (why) {
    case wake_reason::timed_out:
      return {-ECANCELED, io_wait_result::timed_out};
    case wake_reason::cancelled:
      return {-ECANCELED, io_wait_result::cancelled};
    default:
      return {-ECANCELED, closed ? io_wait_result::closed : io_wait_result::ready};
  }
}

void count_ring_wait() noexcept {
  if (worker* w = current_worker())
    w->ring_reads.store(w->ring_reads.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
}

}  // namespace

worker_ring* usable_ring() noexcept {
  green_thread* g = current_green();
  if (!g || is_task(g) || shutting_down(g)) return nullptr;
  worker* w = g->running_on;
  return w && w->ring && w->ring->open() ? w->ring : nullptr;
}

ring_read_result ring_read(worker_ring& r, poll_descriptor* pd, void* buf, std::size_t len,
                           bool socket, std::int64_t deadline) {
  poll_descriptor::side& s = pd->sides[0];
  ring_op op;
  op.pd = pd;
  pd->lock.lock();
  if (pd->closing()) {
    pd->lock.unlock();
    return {-ECANCELED, io_wait_result::closed};
  }
  s.ready = false;  // the read queued now is a try of its own: it takes what an edge said
  if (s.parked) {
    pd->lock.unlock();
    throw std::logic_error("weft::net: two green threads read one socket at once");
  }
  if (!r.queue_read(op, pd->fd, buf, len, socket)) {
    pd->lock.unlock();
    return {-EAGAIN, io_wait_result::ready};
  }
  s.parked = &op.w;
  s.ring = true;
  count_ring_wait();
  const wake_reason why = park(op.w, &pd->lock, deadline, wait_reason::io_read);
  pd->lock.lock();
  if (!op.done) {  // still in flight, into `buf`: no longer this side's waiter
    if (s.parked == &op.w) s.parked = nullptr;
    s.ring = false;
  }
  const bool early = settle(op, pd->lock, wait_reason::io_read);
  return outcome(op, early, why, pd->closing());
}

ring_read_result ring_file_io(worker_ring& r, bool write, int fd, void* buf, std::size_t len,
                              std::int64_t offset) {
  ring_op op;
  op.lock.lock();
  if (!r.queue_file(op, write, fd, buf, len, offset)) {
    op.lock.unlock();
    return {-EAGAIN, io_wait_result::ready};
  }
  count_ring_wait();
  const wake_reason why = park(op.w, &op.lock, no_deadline, wait_reason::blocking);
  op.lock.lock();
  const bool early = settle(op, op.lock, wait_reason::blocking);
  return outcome(op, early, why, false);
}

}  // namespace weft::detail
