// Internal: the type-erased heart of a channel (Go's hchan) and of select (Go's selectgo).
// Waiting senders and receivers are nodes on their own stacks, queued on the channel under its
// one lock; whoever completes an operation claims the waiter with one CAS, moves the value and
// only then wakes it. The parts that know T live in chan.hpp as a table of functions.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "weft/detail/spinlock.hpp"
#include "weft/detail/waiter.hpp"

namespace weft {

// Thrown by send (and a select's send case) on a closed channel, and by close of a closed one.
class channel_closed : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {

// How a parked operation ended, as told by whoever woke it.
enum class chan_result : std::uint8_t {
  pending,
  done,       // the value was handed over
  closed,     // the channel was closed
  retry,      // the counterpart's move threw: run the operation again
  cancelled,  // a cancellation request (or the scope's deadline) ended the wait; nothing moved
};

// One parked operation on one channel: a blocked send or recv, or one case of a select (all
// cases of a select share one waiter, so exactly one of them can win).
// (Ordered to leave no padding, as waiter is: one sits in every task parked on a channel.)
struct chan_node {
  chan_node* prev = nullptr;
  chan_node* next = nullptr;
  waiter* w = nullptr;
  void* slot = nullptr;          // recv: std::optional<T>* to fill; send: T* to move from
  std::uint32_t case_index = 0;  // within a select
  bool linked = false;
  chan_result result = chan_result::pending;
};
static_assert(sizeof(chan_node) <= 5 * sizeof(void*), "chan_node: keep it free of padding");

class node_queue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  // Readable without the lock: a hint, exact only under it.
  bool maybe_waiting() const noexcept { return size_.load(std::memory_order_relaxed) != 0; }
  void push_back(chan_node& n) noexcept {  // inline: every park on a channel makes one
    n.prev = tail_;
    n.next = nullptr;
    if (tail_) {
      tail_->next = &n;
    } else {
      head_ = &n;
    }
    tail_ = &n;
    n.linked = true;
    size_.store(size_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void push_front(chan_node& n) noexcept;
  void remove(chan_node& n) noexcept;  // no-op if not linked
  // Pops nodes until one whose waiter it could claim (two-phase); null if none. Nodes of
  // selects that another case already won are dropped on the way. `through_bias`: the caller
  // holds the channel's lock through its bias (spinlock::held_through_bias), which lets it
  // claim an exclusive waiter without a CAS.
  chan_node* claim_front(bool through_bias) noexcept;

 private:
  chan_node* head_ = nullptr;
  chan_node* tail_ = nullptr;
  std::atomic<std::uint32_t> size_{0};
};

struct chan_core;

// What select needs from a channel of some T; every function runs with the channel locked.
struct chan_ops {
  // Completes a recv without blocking if it can: fills *out (a std::optional<T>*; left empty
  // when closed and drained). Sets *wake to a green thread to ready() after unlocking.
  bool (*try_recv)(chan_core* c, void* out, green_thread** wake);
  // Completes a send without blocking if it can, moving from *value (a T*). Throws
  // channel_closed when closed.
  bool (*try_send)(chan_core* c, void* value, green_thread** wake);
};

struct chan_core {
  spinlock lock;
  bool closed = false;
  // When to bias `lock` to the worker in `user` (note_user): after 256 << bias_doublings
  // operations in a row from it, doubled at each bias, so that a channel that changes hands now
  // and then pays for few revocations. In the padding after `closed`: a channel of int stays
  // within 128 bytes (an allocator class and two cache lines).
  std::uint8_t bias_doublings = 0;
  std::uint32_t bias_streak = 0;
  std::size_t capacity = 0;
  std::size_t count = 0;  // values in the buffer
  node_queue recvq;
  node_queue sendq;
  std::atomic<std::size_t> handles{1};
  std::atomic<std::size_t> size_hint{0};  // `count`, readable without the lock
  last_user user;                         // on the lock's cache line, which the caller holds

  // Marks closed and claims every parked sender and receiver with `closed`; returns them chained
  // by `next`, for release_nodes() after unlocking. Throws channel_closed if already closed.
  chan_node* close_locked();
};

// The bias for a new channel's lock (spinlock::bias_to): the calling thread when it is the
// worker of a single-worker runtime (every green thread that will use the channel runs there),
// else 0.
std::uintptr_t lock_bias_for_new_channel() noexcept;

// coop_point() for a completed operation on a channel, in two halves, because it runs with the
// channel locked: once that is unlocked, the counterpart may see the operation done and destroy
// the channel. The first notes which worker used it (biasing its lock to that worker after a
// long run of operations from it alone) and spends a unit of budget; `yield_due` when the green
// thread must now yield, which the caller does with coop_yield() after unlocking. Returns the
// caller's worker too (null on an OS thread), for ready_from after unlocking: one look-up of the
// calling thread's worker for both halves.
struct user_note {
  worker* by;
  bool yield_due;
};
user_note note_user(chan_core& c) noexcept;

// Hands a claimed node its result and wakes its owner (see wake_claimed).
green_thread* finish_node(chan_node& n, chan_result r) noexcept;

// Wakes nodes claimed by close_locked.
void release_nodes(chan_node* chain) noexcept;

// Parks the caller on `n` (queued by the caller in `q` of `c`, which is locked) and returns how
// it ended; when cancelled it unlinks the node itself and returns `cancelled`, or throws
// weft::cancelled if the end of weft::run is unwinding the caller (no overload may outlive that).
chan_result park_on(chan_core& c, chan_node& n, node_queue& q);

// One case of a select, as the engine sees it.
struct select_case {
  enum class kind : std::uint8_t { recv, send, timeout, default_, cancelled };
  kind k = kind::default_;
  chan_core* c = nullptr;  // null: a nil channel, never ready
  const chan_ops* ops = nullptr;
  void* slot = nullptr;                 // as in chan_node
  std::int64_t deadline = no_deadline;  // timeout cases
  chan_node node;
};

// Go's selectgo over `cases` (n of them, at most 65535): returns the index of the case that
// completed. Recv cases have their optional filled; the caller runs the matching callback. A
// cancelled wait returns the `cancelled` case's index if there is one, else throws.
std::size_t select_run(select_case* cases, std::size_t n);

// The same for a task (weft::async_select), in two halves around its suspension. `locks` has
// room for n; the state lives in the awaiter, in the task's frame.
struct select_task_state {
  spinlock** locks;
  std::uint32_t lock_count = 0;
  bool queued = false;  // nothing was ready: the cases' nodes were queued
  std::size_t chosen = 0;
  waiter w;
  task_park park;
};
// True: the task suspends (to wait, or to yield after completing a case). False: it goes on.
bool select_task_begin(select_task_state& st, select_case* cases, std::size_t n, void* resume_at);
// Which case won; throws as select_run does. The async form needs T's that move without
// throwing (no retry after a resume).
std::size_t select_task_end(select_task_state& st, select_case* cases, std::size_t n);

}  // namespace detail
}  // namespace weft
