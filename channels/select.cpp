// select (Go's selectgo): poll the cases in random order with every channel locked (in address
// order, so two selects cannot deadlock); if none is ready, queue one node per case, all sharing
// one waiter, and park; the first party to claim that waiter decides which case won.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "weft/detail/chan_core.hpp"

namespace weft::detail {
namespace {

std::uint64_t next_random() noexcept {
  thread_local std::uint64_t s = reinterpret_cast<std::uintptr_t>(&s) * 0x9E3779B97F4A7C15ULL | 1;
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 2685821657736338717ULL;
}

// Small arrays on the stack for the usual handful of cases; the heap beyond that.
template <class T, std::size_t N>
class small_array {
 public:
  explicit small_array(std::size_t n) : data_(n <= N ? inline_ : (heap_.resize(n), heap_.data())) {}
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  T* data() noexcept { return data_; }

 private:
  T inline_[N];
  std::vector<T> heap_;
  T* data_;
};

// The channels' locks of a select, sorted and deduplicated, in storage of at least n entries
// (the sync form's stack, or an awaiting task's frame).
class locked_set {
 public:
  locked_set(select_case* cases, std::size_t n, spinlock** storage) : locks_(storage) {
    for (std::size_t i = 0; i < n; ++i)
      if (cases[i].c) locks_[count_++] = &cases[i].c->lock;
    // Insertion sort: a select has a handful of channels.
    for (std::uint32_t i = 1; i < count_; ++i) {
      spinlock* key = locks_[i];
      std::uint32_t j = i;
      for (; j > 0 && locks_[j - 1] > key; --j) locks_[j] = locks_[j - 1];
      locks_[j] = key;
    }
    count_ = static_cast<std::uint32_t>(std::unique(locks_, locks_ + count_) - locks_);
  }
  void lock() noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) locks_[i]->lock();
  }
  void unlock() noexcept {
    for (std::uint32_t i = count_; i-- > 0;) locks_[i]->unlock();
  }
  // Leaves `l` out of later lock() and unlock() calls.
  void forget(const spinlock* l) noexcept {
    std::uint32_t j = 0;
    for (std::uint32_t i = 0; i < count_; ++i)
      if (locks_[i] != l) locks_[j++] = locks_[i];
    count_ = j;
  }
  spinlock* const* data() noexcept { return locks_; }
  std::uint32_t size() const noexcept { return count_; }

 private:
  spinlock** locks_;
  std::uint32_t count_ = 0;
};

bool looks_ready(const select_case& sc) noexcept {
  const chan_core& c = *sc.c;
  if (sc.k == select_case::kind::recv)
    return c.size_hint.load(std::memory_order_relaxed) != 0 || c.sendq.maybe_waiting();
  if (sc.k == select_case::kind::send)
    return c.recvq.maybe_waiting() || c.size_hint.load(std::memory_order_relaxed) < c.capacity;
  return false;
}

// Which cases are special, found once per select.
struct select_plan {
  std::size_t default_index, timeout_index, cancel_index;
  std::int64_t deadline;
};

select_plan plan_of(const select_case* cases, std::size_t n) noexcept {
  select_plan p{n, n, n, no_deadline};
  for (std::size_t i = 0; i < n; ++i) {
    if (cases[i].k == select_case::kind::default_) p.default_index = i;
    if (cases[i].k == select_case::kind::cancelled) p.cancel_index = i;
    if (cases[i].k == select_case::kind::timeout && cases[i].deadline < p.deadline) {
      p.deadline = cases[i].deadline;
      p.timeout_index = i;
    }
  }
  return p;
}

// Completes a ready case if there is one and returns its index (budget spent: *yield_due says
// whether the caller should yield); the default's index if none is ready and there is one.
// Otherwise returns n with every channel of `locks` locked and one node per case queued on
// `w`: the caller parks.
std::size_t poll_or_queue(select_case* cases, std::size_t n, const select_plan& plan,
                          locked_set& locks, waiter& w, bool* yield_due) {
  small_array<std::uint32_t, 8> order(n);
  // Random poll order (Fisher-Yates), so no ready case is favoured.
  for (std::size_t i = 0; i < n; ++i) {
    const auto j = static_cast<std::size_t>(((next_random() >> 32) * (i + 1)) >> 32);
    order[i] = order[j];
    order[j] = static_cast<std::uint32_t>(i);
  }

  // Fast path: take the first case, in poll order, that looks ready, locking only its
  // channel. Uniform among the ready cases as the order is random; exact under the lock.
  for (std::size_t k = 0; k < n; ++k) {
    select_case& sc = cases[order[k]];
    if (!sc.c || !looks_ready(sc)) continue;
    green_thread* wake = nullptr;
    bool done;
    sc.c->lock.lock();
    try {
      done = sc.k == select_case::kind::recv ? sc.ops->try_recv(sc.c, sc.slot, &wake)
                                             : sc.ops->try_send(sc.c, sc.slot, &wake);
    } catch (...) {
      sc.c->lock.unlock();
      ready(wake);
      throw;
    }
    if (!done) {
      sc.c->lock.unlock();
      continue;
    }
    const user_note note = note_user(*sc.c);  // locked: see chan::attempt
    *yield_due = note.yield_due;
    sc.c->lock.unlock();
    ready_from(note.by, wake);
    return order[k];
  }

  // Slow path, as Go: every channel locked, poll again (a closed channel is only seen here),
  // then queue on all of them at once.
  locks.lock();
  for (std::size_t k = 0; k < n; ++k) {
    select_case& sc = cases[order[k]];
    if (!sc.c || sc.k == select_case::kind::timeout || sc.k == select_case::kind::default_)
      continue;
    green_thread* wake = nullptr;
    bool done;
    try {
      done = sc.k == select_case::kind::recv ? sc.ops->try_recv(sc.c, sc.slot, &wake)
                                             : sc.ops->try_send(sc.c, sc.slot, &wake);
    } catch (...) {
      locks.unlock();
      ready(wake);
      throw;
    }
    if (done) {
      const user_note note = note_user(*sc.c);
      *yield_due = note.yield_due;
      locks.unlock();
      ready_from(note.by, wake);
      return order[k];
    }
  }
  if (plan.default_index != n) {
    locks.unlock();
    coop_point();  // a select-with-default loop polls: it must not hold the worker forever
    return plan.default_index;
  }

  // Nothing ready: one node per channel case, all on one waiter.
  for (std::size_t i = 0; i < n; ++i) {
    select_case& sc = cases[i];
    if (!sc.c || (sc.k != select_case::kind::recv && sc.k != select_case::kind::send)) continue;
    sc.node = chan_node{};
    sc.node.w = &w;
    sc.node.slot = sc.slot;
    sc.node.case_index = static_cast<std::uint32_t>(i);
    (sc.k == select_case::kind::recv ? sc.c->recvq : sc.c->sendq).push_back(sc.node);
  }
  return n;
}

// After the park: takes the losing nodes back out and says which case won; n to poll again
// (the counterpart's move threw). Throws weft::cancelled (unless there is a cancelled case) and
// channel_closed for a send case on a channel closed meanwhile.
std::size_t settle(select_case* cases, std::size_t n, const select_plan& plan, locked_set& locks,
                   waiter& w, wake_reason why) {
  // The winner was unlinked by whoever claimed it. The winner's channel is not touched again
  // unless another case queued on it too: its counterpart has seen the operation complete and
  // may have destroyed it already.
  const std::size_t won_index =
      why == wake_reason::notified ? static_cast<chan_node*>(w.payload)->case_index : n;
  if (won_index != n) {
    const chan_core* won_on = cases[won_index].c;
    bool shared = false;
    for (std::size_t i = 0; i < n; ++i) shared |= i != won_index && cases[i].c == won_on;
    if (!shared) locks.forget(&won_on->lock);
  }
  locks.lock();
  for (std::size_t i = 0; i < n; ++i) {
    select_case& sc = cases[i];
    if (i == won_index || !sc.c ||
        (sc.k != select_case::kind::recv && sc.k != select_case::kind::send))
      continue;
    (sc.k == select_case::kind::recv ? sc.c->recvq : sc.c->sendq).remove(sc.node);
  }
  locks.unlock();

  if (why == wake_reason::cancelled) {
    if (plan.cancel_index == n || unwinding_for_shutdown()) throw_cancelled();
    return plan.cancel_index;
  }
  if (why == wake_reason::timed_out) return plan.timeout_index;
  const chan_node& won = *static_cast<chan_node*>(w.payload);
  const select_case& sc = cases[won.case_index];
  switch (won.result) {
    case chan_result::done:
      return won.case_index;
    case chan_result::closed:
      if (sc.k == select_case::kind::send) throw channel_closed("weft: send on closed channel");
      return won.case_index;  // recv: its optional stays empty
    case chan_result::retry:
    case chan_result::pending:
    case chan_result::cancelled:
      break;
  }
  return n;  // the counterpart's move threw: poll again
}

}  // namespace

std::size_t select_run(select_case* cases, std::size_t n) {
  const select_plan plan = plan_of(cases, n);
  for (;;) {
    small_array<spinlock*, 8> lock_storage(n);
    locked_set locks(cases, n, lock_storage.data());
    waiter w;
    bool yield_due = false;
    const std::size_t chosen = poll_or_queue(cases, n, plan, locks, w, &yield_due);
    if (chosen != n) {
      if (yield_due) coop_yield();
      return chosen;
    }
    const wake_reason why =
        park_multi(w, locks.data(), locks.size(), plan.deadline, wait_reason::select);
    const std::size_t won = settle(cases, n, plan, locks, w, why);
    if (won != n) return won;
  }
}

bool select_task_begin(select_task_state& st, select_case* cases, std::size_t n, void* resume_at) {
  const select_plan plan = plan_of(cases, n);
  locked_set locks(cases, n, st.locks);
  bool yield_due = false;
  st.chosen = poll_or_queue(cases, n, plan, locks, st.w, &yield_due);
  if (st.chosen != n) return yield_due && task_yield_begin(resume_at);
  st.lock_count = locks.size();
  st.queued = true;
  return task_park_begin(st.park, resume_at, st.w, st.locks, st.lock_count, plan.deadline,
                         wait_reason::select);
}

std::size_t select_task_end(select_task_state& st, select_case* cases, std::size_t n) {
  if (!st.queued) return st.chosen;
  const wake_reason why = st.park.parked ? task_park_end(st.park, st.w) : st.w.reason();
  const select_plan plan = plan_of(cases, n);
  locked_set locks(cases, n, st.locks);  // the same set again (park released them)
  return settle(cases, n, plan, locks, st.w, why);
}

}  // namespace weft::detail
