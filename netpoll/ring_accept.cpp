// A listener's multishot accept on a worker's ring (ring.hpp, ring_acceptor): one request, armed
// by the first accept() that would wait, accepts every connection as it arrives; accept() takes
// them from its queue, with no system call of its own.
//
// Invariants (with ring.hpp's):
// - The acceptor is guarded by pd->lock, made by ring_accept and freed by recycle (or, when the
//   listener went away while armed, by the last completion, which then recycles the descriptor).
// - Armed, it holds one operation on the descriptor: close() cancels it and the fd is closed only
//   after its last completion, so the kernel never accepts on a reused descriptor number.
// - A connection it accepted is in `accepted` until accept() takes it; after close() none is
//   kept (closed at once, or as it arrives).
// - At most `high_water` wait unaccepted before the request is cancelled, so a server that
//   accepts slowly leaves the rest in the kernel's backlog, as it would under epoll.
#include <unistd.h>

#include <cerrno>
#include <new>
#include <stdexcept>

#include "io_wait.hpp"
#include "ring.hpp"
#include "runtime/scheduler.hpp"

namespace weft::detail {
namespace {

constexpr std::size_t high_water = 256;

void count_accept() noexcept {
  if (worker* w = current_worker())
    w->ring_accepts.store(w->ring_accepts.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
}

void close_all(ring_acceptor& a) noexcept {
  for (int fd : a.accepted) ::close(fd);
  a.accepted.clear();
}

// With pd->lock held: asks the acceptor's ring to cancel it, once.
void cancel(ring_acceptor& a) noexcept {
  if (!a.armed || a.cancelling) return;
  a.cancelling = true;
  const worker* here = current_worker();
  if (here && here->ring == a.owner)
    a.owner->queue_cancel(a);
  else
    a.owner->post_cancel(a);  // the mailbox takes a copy of the key; the owner may be busy
}

// With pd->lock held: the green thread parked in accept, claimed to be woken; if none, a task
// waiting for readiness (or about to) is told there is something to take.
green_thread* wake_accepter(poll_descriptor& pd, const ring_acceptor& a) noexcept {
  poll_descriptor::side& s = pd.sides[0];
  if (s.parked && s.parked->claim(wake_reason::notified)) {
    green_thread* g = s.parked->thread;
    s.parked = nullptr;
    s.ring = false;
    return g;
  }
  if (!a.accepted.empty() || a.error != 0) s.ready = true;
  return nullptr;
}

}  // namespace

ring_read_result ring_accept(worker_ring& r, poll_descriptor* pd, std::int64_t deadline) {
  poll_descriptor::side& s = pd->sides[0];
  pd->lock.lock();
  ring_acceptor* a = pd->acceptor;
  if (!a) {
    a = new (std::nothrow) ring_acceptor(pd);
    if (!a) {
      pd->lock.unlock();
      return {-EAGAIN, io_wait_result::ready};
    }
    pd->acceptor = a;
  }
  if (pd->closing()) {
    pd->lock.unlock();
    return {-ECANCELED, io_wait_result::closed};
  }
  if (!a->accepted.empty()) {
    const int fd = a->accepted.front();
    a->accepted.pop_front();
    pd->lock.unlock();
    count_accept();
    return {fd, io_wait_result::ready};
  }
  if (a->error != 0) {
    const int e = a->error;
    a->error = 0;
    pd->lock.unlock();
    return {-e, io_wait_result::ready};
  }
  if (s.parked) {
    pd->lock.unlock();
    throw std::logic_error("weft::net: two green threads accept on one listener at once");
  }
  if (!a->armed) {
    if (!pd->begin_op()) {  // closing meanwhile
      pd->lock.unlock();
      return {-ECANCELED, io_wait_result::closed};
    }
    if (!r.queue_accept(*a)) {
      pd->lock.unlock();
      pd->end_op();
      return {-EAGAIN, io_wait_result::ready};
    }
    a->armed = true;
    a->cancelling = false;
    a->owner = &r;
  }
  // Parked as a ring read is: edges do not wake it (the listener need not even be registered
  // for them), a completion, close(), a kick or the deadline do.
  waiter w;
  s.parked = &w;
  s.ring = true;
  const wake_reason why = park(w, &pd->lock, deadline, wait_reason::io_read);
  pd->lock.lock();
  if (s.parked == &w) s.parked = nullptr;
  s.ring = false;
  pd->lock.unlock();
  // A connection that came is taken by the caller's next call, after it re-read the deadline.
  return ended_early(why, pd->closing());
}

int take_accepted(poll_descriptor* pd) noexcept {
  pd->lock.lock();
  ring_acceptor* a = pd->acceptor;
  if (!a || a->accepted.empty()) {
    pd->lock.unlock();
    return -1;
  }
  const int fd = a->accepted.front();
  a->accepted.pop_front();
  pd->lock.unlock();
  count_accept();
  return fd;
}

void worker_ring::complete_accept(ring_acceptor* a, int res, bool more, green_chain& out) noexcept {
  poll_descriptor* pd = a->pd;
  pd->lock.lock();
  const bool gone = pd->closing() || a->recycle_when_ended;
  if (res >= 0) {
    if (gone) {
      ::close(res);
    } else {
      try {
        a->accepted.push_back(res);
      } catch (const std::bad_alloc&) {
        ::close(res);  // the client sees a reset; the server hears why
        a->error = ENOMEM;
      }
    }
  } else if (res != -ECANCELED && !gone) {
    a->error = -res;  // ends the request; the next accept() reports it (and backs off)
  }
  if (more && a->accepted.size() >= high_water && !a->cancelling) {
    a->cancelling = true;  // the rest wait in the kernel's backlog
    queue_cancel(*a);
  }
  green_thread* g = more ? wake_accepter(*pd, *a) : nullptr;
  pd->lock.unlock();
  if (g) out.append(g);
  if (more) return;
  // The last completion. Its operation ends first, while `armed` still says so: recycle() then
  // leaves the descriptor to this call, and the fd is never closed after its number's reuse.
  pd->end_op();
  pd->lock.lock();
  a->armed = false;
  a->owner = nullptr;
  const bool recycle = a->recycle_when_ended;
  if (recycle) {
    close_all(*a);
    pd->acceptor = nullptr;
  } else {
    g = wake_accepter(*pd, *a);  // one that parked meanwhile arms the next request
  }
  pd->lock.unlock();
  if (g) out.append(g);
  if (recycle) {
    delete a;
    netpoller::instance().recycle(pd);
  }
}

void close_acceptor(poll_descriptor* pd) noexcept {
  pd->lock.lock();
  if (ring_acceptor* a = pd->acceptor) {
    close_all(*a);
    a->error = 0;
    cancel(*a);
  }
  pd->lock.unlock();
}

bool acceptor_defers_recycle(poll_descriptor* pd) noexcept {
  pd->lock.lock();
  ring_acceptor* a = pd->acceptor;
  if (a && a->armed) {
    a->recycle_when_ended = true;
    cancel(*a);  // close() asked already; this is for a descriptor recycled unclosed
    pd->lock.unlock();
    return true;
  }
  pd->acceptor = nullptr;
  if (a) close_all(*a);
  pd->lock.unlock();
  delete a;
  return false;
}

void forget_acceptor_after_fork(poll_descriptor* pd) noexcept {
  // The request belongs to the parent's ring: the child's first accept arms its own.
  ring_acceptor* a = pd->acceptor;
  if (!a->armed) return;
  a->armed = false;
  a->owner = nullptr;
  a->cancelling = false;
  const bool recycle = a->recycle_when_ended;
  if (recycle) {
    pd->acceptor = nullptr;
    close_all(*a);
    delete a;
  }
  pd->end_op();
  if (recycle) netpoller::instance().recycle(pd);
}

}  // namespace weft::detail
