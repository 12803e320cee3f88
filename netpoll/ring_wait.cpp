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
  return ended_early(why, closed);
}

void count_ring_wait(bool send) noexcept {
  if (worker* w = current_worker()) {
    std::atomic<std::uint64_t>& n = send ? w->ring_sends : w->ring_reads;
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
}

}  // namespace

worker_ring* usable_ring() noexcept {
  green_thread* g = current_green();
  if (!g || is_task(g) || shutting_down(g)) return nullptr;
  worker* w = g->running_on;
  return w && w->ring && w->ring->open() ? w->ring : nullptr;
}

ring_read_result ring_socket_io(worker_ring& r, poll_descriptor* pd, const ring_target& t,
                                std::int64_t deadline) {
  const bool send = t.send;
  poll_descriptor::side& s = pd->sides[send ? 1 : 0];
  ring_op op;
  op.pd = pd;
  op.dir = send ? 1 : 0;
  const wait_reason what = send ? wait_reason::io_write : wait_reason::io_read;
  pd->lock.lock();
  if (pd->closing()) {
    pd->lock.unlock();
    return {-ECANCELED, io_wait_result::closed};
  }
  s.ready = false;  // the read queued now is a try of its own: it takes what an edge said
  if (s.parked) {
    pd->lock.unlock();
    throw std::logic_error(send ? "weft::net: two green threads write one socket at once"
                                : "weft::net: two green threads read one socket at once");
  }
  const bool queued = t.msg  ? r.queue_msg(op, pd->fd, t.msg, send)
                      : send ? r.queue_send(op, pd->fd, t.buf, t.len)
                             : r.queue_read(op, pd->fd, t.buf, t.len, t.socket);
  if (!queued) {
    pd->lock.unlock();
    return {-EAGAIN, io_wait_result::ready};
  }
  s.parked = &op.w;
  s.ring = true;
  count_ring_wait(send);
  const wake_reason why = park(op.w, &pd->lock, deadline, what);
  pd->lock.lock();
  // Whatever woke it, the call is no longer this side's waiter: a completion that lost the claim
  // to a deadline or a kick leaves `parked` set, and an edge or close() after this call
  // returned would claim a waiter that is gone.
  if (s.parked == &op.w) s.parked = nullptr;
  s.ring = false;
  const bool early = settle(op, pd->lock, what);
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
  count_ring_wait(false);
  const wake_reason why = park(op.w, &op.lock, no_deadline, wait_reason::blocking);
  op.lock.lock();
  const bool early = settle(op, op.lock, wait_reason::blocking);
  return outcome(op, early, why, false);
}

}  // namespace weft::detail
