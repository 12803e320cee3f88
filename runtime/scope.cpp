// weft::scope: children are linked under the scope's lock from before they can run until they
// have finished with it, so a cancel that holds the lock reaches each live child's record while
// it is alive (runtime/cancel.hpp). Invariants, under lock_:
//   - live_ counts the linked children; a child unlinks itself as its very last use of the scope;
//   - waiters_ are woken when live_ reaches zero;
//   - once cancelled_, every child linked (now or later) has its cancel request set.
#include <algorithm>

#include "cancel.hpp"
#include "scheduler.hpp"
#include "weft/detail/event.hpp"
#include "weft/join_handle.hpp"
#include "weft/scope.hpp"

namespace weft {

using detail::wake_reason;

scope::scope() noexcept : scope(detail::no_deadline, 0) {}

scope::scope(std::int64_t deadline, int) noexcept {
  detail::green_thread* g = detail::current_green();
  const std::int64_t inherited = g ? g->deadline : detail::no_deadline;
  deadline_ = std::min(deadline, inherited);
  if (g && deadline_ < inherited) {
    creator_ = g;
    creator_deadline_ = inherited;
    detail::set_deadline(g, deadline_);
  }
}

scope::~scope() {
  lock_.lock();
  const bool running = live_ != 0;
  lock_.unlock();
  if (running) {
    cancel();
    join_all();
  }
  if (creator_) detail::set_deadline(creator_, creator_deadline_);
}

void scope::admit(child& c, std::int64_t deadline) noexcept {
  detail::set_deadline(c.g, deadline);
  lock_.lock();
  c.next = head_;
  if (head_) head_->prev = &c;
  head_ = &c;
  ++live_;
  // Not yet running: nobody else can see it, so the request needs no barrier.
  if (cancelled_)
    c.g->cancel_bits.fetch_or(detail::cancel_requested_bit, std::memory_order_relaxed);
  lock_.unlock();
}

void scope::child_failed(std::exception_ptr e) noexcept {
  detail::cancel_batch batch;
  lock_.lock();
  if (!error_) error_ = std::move(e);
  cancel_locked(batch);
  lock_.unlock();
  batch.deliver();
}

void scope::child_done(child& c, bool stopped) noexcept {
  lock_.lock();
  children_stopped_ |= stopped;
  if (c.prev)
    c.prev->next = c.next;
  else
    head_ = c.next;
  if (c.next) c.next->prev = c.prev;
  detail::waiter* chain = --live_ == 0 ? waiters_.claim_all() : nullptr;
  lock_.unlock();
  detail::release_claimed(chain, wake_reason::notified);
}

void scope::cancel_locked(detail::cancel_batch& batch) noexcept {
  cancelled_ = true;
  if (!head_) return;
  for (child* c = head_; c; c = c->next) detail::cancel_begin(c->g);
  detail::cancel_barrier();  // one for the whole batch
  for (child* c = head_; c; c = c->next) batch.claim(c->g);
}

void scope::cancel() noexcept {
  detail::cancel_batch batch;
  lock_.lock();
  cancel_locked(batch);
  lock_.unlock();
  batch.deliver();
}

bool scope::cancel_requested() const noexcept {
  lock_.lock();
  const bool c = cancelled_;
  lock_.unlock();
  return c;
}

std::size_t scope::active() const noexcept {
  lock_.lock();
  const std::size_t n = live_;
  lock_.unlock();
  return n;
}

void scope::join_all() noexcept {
  cancel_shield shield;
  for (;;) {
    lock_.lock();
    if (live_ == 0) {
      lock_.unlock();
      return;
    }
    detail::waiter w;
    waiters_.push_back(w);
    if (detail::park(w, &lock_, detail::no_deadline, detail::wait_reason::scope) ==
        wake_reason::notified)
      continue;
    // Only the end of weft::run gets here (the shield holds off requests): the children are
    // being unwound too, so wait on.
    lock_.lock();
    waiters_.remove(w);
    lock_.unlock();
  }
}

void scope::wait() {
  for (;;) {
    lock_.lock();
    if (live_ == 0) {
      std::exception_ptr e = std::exchange(error_, nullptr);
      // Children stopped by the deadline (theirs ended their waits) before this wait saw it.
      const bool expired = std::exchange(children_stopped_, false) &&
                           deadline_ != detail::no_deadline && detail::now_ns() >= deadline_;
      lock_.unlock();
      if (e) std::rethrow_exception(std::move(e));
      if (expired) throw cancelled{};
      return;
    }
    detail::waiter w;
    waiters_.push_back(w);
    const wake_reason why = detail::park(w, &lock_, deadline_, detail::wait_reason::scope);
    if (why == wake_reason::notified) continue;
    lock_.lock();
    waiters_.remove(w);
    lock_.unlock();
    // The deadline passed, or the caller was cancelled: stop the children and wait for them.
    cancel();
    join_all();
    lock_.lock();
    std::exception_ptr e = std::exchange(error_, nullptr);
    children_stopped_ = false;
    lock_.unlock();
    // A child's error that came first says more than the deadline; the caller's own request
    // must unwind it, whatever its children did.
    if (e && why == wake_reason::timed_out) std::rethrow_exception(std::move(e));
    throw cancelled{};
  }
}

}  // namespace weft

namespace weft::detail {

void cancel_joinable(event& done, green_thread*& target) noexcept {
  cancel_batch batch;
  done.state_lock().lock();
  if (green_thread* g = target) {
    cancel_begin(g);
    cancel_barrier();
    batch.claim(g);
  }
  done.state_lock().unlock();
  batch.deliver();
}

}  // namespace weft::detail
