// weft::chan<T>: Go's channels, without a garbage collector.
// A channel is a handle: copies share one channel, the last one frees it. Capacity 0 is
// unbuffered (a send waits for its receiver); a default-constructed chan is the nil channel,
// on which every wait is forever (useful to disable a select case).
//
//   weft::chan<int> ch(16);                      // buffered, 16 values
//   weft::go([ch]() mutable {
//     for (int i = 0; i < 100; ++i) ch.send(i);  // parks while the buffer is full
//     ch.close();
//   });
//   for (int v : ch) use(v);                     // until closed and drained
#pragma once

#include <coroutine>
#include <cstddef>
#include <iterator>
#include <new>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "weft/detail/chan_core.hpp"
#include "weft/detail/task.hpp"

namespace weft {

template <class T>
class chan;

namespace detail {

struct select_access;
template <class Op>
class chan_awaiter;
// How a channel operation went without waiting (chan::attempt_once).
enum class attempt_result : std::uint8_t { waits, done, done_yield_due };

// A channel of T: the core plus a ring of `capacity` T's, allocated once (no allocation per
// message). Values are moved in and out and destroyed exactly once.
template <class T>
struct chan_state : chan_core {
  static_assert(alignof(T) <= 16, "weft::chan: over-aligned element types are not supported");
  T* buf = nullptr;
  std::size_t head = 0;

  static chan_state* create(std::size_t cap) {
    void* mem = runtime_alloc(sizeof(chan_state));
    auto* c = ::new (mem) chan_state;
    c->capacity = cap;
    c->lock.bias_to(lock_bias_for_new_channel());
    if (cap) {
      try {
        c->buf = static_cast<T*>(runtime_alloc(cap * sizeof(T)));
      } catch (...) {
        c->~chan_state();
        runtime_free(mem, sizeof(chan_state));
        throw;
      }
    }
    return c;
  }
  void release() noexcept {
    if (handles.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    for (std::size_t i = 0; i < count; ++i) buf[(head + i) % capacity].~T();
    if (buf) runtime_free(buf, capacity * sizeof(T));
    this->~chan_state();
    runtime_free(this, sizeof(chan_state));
  }

  T& at(std::size_t i) noexcept { return buf[(head + i) % capacity]; }
  void set_count(std::size_t n) noexcept {
    count = n;
    size_hint.store(n, std::memory_order_relaxed);
  }

  // Both run under `lock`. See chan_ops.
  static bool try_recv(chan_core* core, void* out_v, green_thread** wake) {
    auto* c = static_cast<chan_state*>(core);
    auto& out = *static_cast<std::optional<T>*>(out_v);
    if (chan_node* s = c->sendq.claim_front(c->lock.held_through_bias())) {
      T& src = *static_cast<T*>(s->slot);
      if (c->capacity == 0) {
        try {
          out.emplace(std::move(src));
        } catch (...) {
          *wake = finish_node(*s, chan_result::retry);
          throw;
        }
      } else {
        // A sender waits only on a full buffer: take the oldest, queue the sender's value.
        try {
          out.emplace(std::move(c->at(0)));
        } catch (...) {
          *wake = finish_node(*s, chan_result::retry);
          throw;
        }
        c->at(0).~T();
        c->head = (c->head + 1) % c->capacity;
        try {
          ::new (&c->at(c->count - 1)) T(std::move(src));
        } catch (...) {
          // We have our value; the sender will try again (and see its exception itself).
          c->set_count(c->count - 1);
          *wake = finish_node(*s, chan_result::retry);
          return true;
        }
      }
      *wake = finish_node(*s, chan_result::done);
      return true;
    }
    if (c->count > 0) {
      out.emplace(std::move(c->at(0)));
      c->at(0).~T();
      c->head = (c->head + 1) % c->capacity;
      c->set_count(c->count - 1);
      return true;
    }
    if (c->closed) {
      out.reset();
      return true;
    }
    return false;
  }

  static bool try_send(chan_core* core, void* value_v, green_thread** wake) {
    auto* c = static_cast<chan_state*>(core);
    T& value = *static_cast<T*>(value_v);
    if (c->closed) throw channel_closed("weft: send on closed channel");
    if (chan_node* r = c->recvq.claim_front(c->lock.held_through_bias())) {
      try {
        static_cast<std::optional<T>*>(r->slot)->emplace(std::move(value));
      } catch (...) {
        *wake = finish_node(*r, chan_result::retry);
        throw;
      }
      *wake = finish_node(*r, chan_result::done);
      return true;
    }
    if (c->count < c->capacity) {
      ::new (&c->at(c->count)) T(std::move(value));
      c->set_count(c->count + 1);
      return true;
    }
    return false;
  }

  // chan::send's form of try_send: a closed channel completes the attempt (reported in `closed`)
  // instead of throwing, so the no-throw overload never throws inside.
  struct send_arg {
    T* value;
    bool closed = false;
  };
  static bool try_send_unless_closed(chan_core* core, void* arg_v, green_thread** wake) {
    auto& arg = *static_cast<send_arg*>(arg_v);
    if (core->closed) {
      arg.closed = true;
      return true;
    }
    return try_send(core, arg.value, wake);
  }

  static constexpr chan_ops ops{&try_recv, &try_send};
};

// A nil channel's operations block forever (until weft::run ends and unwinds the caller).
[[noreturn]] void block_forever();

}  // namespace detail

// A channel of T, Go-style. Copies of a chan are handles to one channel; the last handle frees it
// and destroys any values still buffered. A default-constructed chan is a nil channel: send and
// recv block forever, select never picks it, close throws. Usable from green threads and plain
// OS threads on either end. Every operation that completes without blocking spends one unit of
// the calling green thread's cooperative budget.
template <class T>
class chan {
 public:
  using value_type = T;

  chan() noexcept = default;
  // capacity 0: unbuffered (a send waits for its receiver).
  explicit chan(std::size_t capacity) : s_(detail::chan_state<T>::create(capacity)) {}
  chan(const chan& o) noexcept : s_(o.s_) {
    if (s_) s_->handles.fetch_add(1, std::memory_order_relaxed);
  }
  chan(chan&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  chan& operator=(chan o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~chan() {
    if (s_) s_->release();
  }

  // Blocks until a receiver or buffer space takes the value. Throws channel_closed if the
  // channel is (or becomes, while waiting) closed; the value is then not sent. Cancellable
  // (weft/cancel.hpp): throws weft::cancelled, the value not sent and left in `value`.
  void send(T&& value) {
    const detail::chan_result r = send_or_park(value);
    if (r == detail::chan_result::closed) throw channel_closed("weft: send on closed channel");
    if (r == detail::chan_result::cancelled) detail::throw_cancelled();
  }
  void send(const T& value) {
    T copy(value);
    send(std::move(copy));
  }
  // The same without throwing: `ec` is std::errc::broken_pipe on a closed channel and
  // std::errc::operation_canceled when cancelled (the value then stays in `value`), else clear.
  // A crowd of green threads that cancellation stops often should wait here: unwinding with an
  // exception costs more than the whole wake-up.
  void send(T&& value, std::error_code& ec) {
    const detail::chan_result r = send_or_park(value);
    if (r == detail::chan_result::done) {
      ec.clear();
    } else {
      ec = std::make_error_code(r == detail::chan_result::closed ? std::errc::broken_pipe
                                                                 : std::errc::operation_canceled);
    }
  }

  // Blocks until a value arrives; std::nullopt once the channel is closed and drained.
  // Cancellable: throws weft::cancelled unless a value was already taken (then returns it).
  std::optional<T> recv() {
    std::optional<T> out;
    if (recv_or_park(out) == detail::chan_result::cancelled) detail::throw_cancelled();
    return out;
  }
  // The same without throwing: when cancelled, returns std::nullopt with `ec` set to
  // std::errc::operation_canceled (nothing was taken); otherwise `ec` is clear.
  //
  //   std::error_code ec;
  //   while (auto job = jobs.recv(ec)) run(*job);
  //   if (ec) return;  // cancelled; else closed and drained
  std::optional<T> recv(std::error_code& ec) {
    std::optional<T> out;
    if (recv_or_park(out) == detail::chan_result::cancelled) {
      ec = std::make_error_code(std::errc::operation_canceled);
    } else {
      ec.clear();
    }
    return out;
  }

  // Sends only if a receiver waits or the buffer has room. False otherwise (value untouched).
  // Throws channel_closed on a closed channel. A failed try spends budget too: a loop that polls
  // a full channel must still let the others on its worker run.
  bool try_send(T&& value) {
    if (!s_) return false;
    const bool sent = attempt(&detail::chan_state<T>::try_send, &value);
    if (!sent) {
      s_->lock.unlock();
      detail::coop_point();
    }
    return sent;
  }
  bool try_send(const T& value) {
    T copy(value);
    return try_send(std::move(copy));
  }

  // A value if one is ready now; std::nullopt if none is (or the channel is closed and drained:
  // tell the two apart with closed()).
  std::optional<T> try_recv() {
    std::optional<T> out;
    if (!s_) return out;
    if (!attempt(&detail::chan_state<T>::try_recv, &out)) {
      s_->lock.unlock();
      detail::coop_point();  // a polling loop must not hold the worker (see try_send)
    }
    return out;
  }

  // Closes the channel: receivers drain what is buffered then get std::nullopt; parked senders
  // throw channel_closed; every waiter wakes. Throws channel_closed if already closed (or nil).
  void close() {
    if (!s_) throw channel_closed("weft: close of nil channel");
    s_->lock.lock();
    detail::chan_node* chain;
    try {
      chain = s_->close_locked();
    } catch (...) {
      s_->lock.unlock();
      throw;
    }
    s_->lock.unlock();
    detail::release_nodes(chain);
  }

  bool closed() const noexcept {
    if (!s_) return false;
    s_->lock.lock();
    const bool c = s_->closed;
    s_->lock.unlock();
    return c;
  }
  std::size_t size() const noexcept {
    return s_ ? s_->size_hint.load(std::memory_order_relaxed) : 0;
  }
  std::size_t capacity() const noexcept { return s_ ? s_->capacity : 0; }
  explicit operator bool() const noexcept { return s_ != nullptr; }  // false: nil channel
  friend bool operator==(const chan& a, const chan& b) noexcept { return a.s_ == b.s_; }

  // Range-for receives until the channel is closed and drained.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(chan* c) : c_(c) { ++*this; }
    T& operator*() noexcept { return *cur_; }
    iterator& operator++() {
      cur_ = c_->recv();
      if (!cur_) c_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.c_ == b.c_; }

   private:
    chan* c_ = nullptr;
    std::optional<T> cur_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

  // From a weft::task (weft/task.hpp): the same operations as awaitables, which suspend the
  // task instead of parking a stack. Same results, errors and cancellation as send and recv.
  //
  //   std::optional<int> v = co_await ch.async_recv();
  //   co_await out.async_send(std::move(*v));
  // T must be nothrow move constructible. The value to send stays with the caller (it is moved
  // only when delivered): pass an lvalue with std::move, or a temporary.
  class recv_awaiter;
  class send_awaiter;
  recv_awaiter async_recv() noexcept { return recv_awaiter(s_, nullptr); }
  recv_awaiter async_recv(std::error_code& ec) noexcept { return recv_awaiter(s_, &ec); }
  send_awaiter async_send(T&& value) noexcept { return send_awaiter(s_, value, nullptr); }
  send_awaiter async_send(T&& value, std::error_code& ec) noexcept {
    return send_awaiter(s_, value, &ec);
  }

 private:
  friend struct detail::select_access;
  template <class Op>
  friend class detail::chan_awaiter;

  // Queues the caller on `q` (of the channel a failed attempt left locked) and parks it.
  detail::chan_result park_in(detail::node_queue& q, void* slot) {
    detail::waiter w;
    w.exclusive = true;
    detail::chan_node n;
    n.w = &w;
    n.slot = slot;
    q.push_back(n);
    return detail::park_on(*s_, n, q);
  }

  // What a send or recv comes to: done, closed or cancelled (never pending or retry).
  detail::chan_result send_or_park(T& value) {
    if (!s_) detail::block_forever();
    for (;;) {
      typename detail::chan_state<T>::send_arg arg{&value};
      if (attempt(&detail::chan_state<T>::try_send_unless_closed, &arg))
        return arg.closed ? detail::chan_result::closed : detail::chan_result::done;
      const detail::chan_result r = park_in(s_->sendq, &value);
      if (r != detail::chan_result::retry) return r;
    }
  }
  detail::chan_result recv_or_park(std::optional<T>& out) {
    if (!s_) detail::block_forever();
    for (;;) {
      if (attempt(&detail::chan_state<T>::try_recv, &out)) return detail::chan_result::done;
      const detail::chan_result r = park_in(s_->recvq, &out);
      if (r != detail::chan_result::retry) return r;
    }
  }

  // Locks the channel and tries `op` without blocking. Done: unlocks, wakes the counterpart,
  // spends budget and returns true. Not done: returns false with the lock still held.
  // Once done, neither this handle nor the channel is touched after unlocking: the counterpart
  // may see the operation complete and destroy both (a receiver that owns the channel and lets
  // the sender hold a reference, as with a mutex destroyed right after its last unlock).
  bool attempt(bool (*op)(detail::chan_core*, void*, detail::green_thread**), void* arg) {
    return attempt_on(s_, op, arg);
  }
  static bool attempt_on(detail::chan_core* c,
                         bool (*op)(detail::chan_core*, void*, detail::green_thread**), void* arg) {
    const detail::attempt_result r = attempt_once(c, op, arg);
    if (r == detail::attempt_result::waits) return false;
    if (r == detail::attempt_result::done_yield_due) detail::coop_yield();
    return true;
  }
  // The operation if it completes without waiting (else `waits`, with the channel left locked),
  // and whether the budget then asks for a yield, which the caller makes: a green thread at once,
  // a task at its co_await (it cannot switch inside a call).
  static detail::attempt_result attempt_once(detail::chan_core* c,
                                             bool (*op)(detail::chan_core*, void*,
                                                        detail::green_thread**),
                                             void* arg) {
    c->lock.lock();
    detail::green_thread* wake = nullptr;
    bool done;
    try {
      done = op(c, arg, &wake);
    } catch (...) {
      c->lock.unlock();
      detail::ready(wake);
      throw;
    }
    if (!done) return detail::attempt_result::waits;
    const detail::user_note note = detail::note_user(*c);
    c->lock.unlock();
    if (wake) detail::ready_from(note.by, wake);
    return note.yield_due ? detail::attempt_result::done_yield_due : detail::attempt_result::done;
  }

  detail::chan_state<T>* s_ = nullptr;
};

namespace detail {

// A channel operation awaited by a task: chan::send/recv's steps around a task_park instead of a
// park. await_ready tries the operation (leaving the channel locked if it must wait);
// await_suspend queues the node and suspends; await_resume says how it ended. Invariant as for
// park_on: a node not claimed when the task resumes is still queued, and is taken out first.
template <class Op>
class chan_awaiter {
 public:
  bool await_ready() {
    // A counterpart's move that throws would make the operation start over after the task
    // resumed, which an awaiter cannot do.
    static_assert(std::is_nothrow_move_constructible_v<typename Op::value_type>,
                  "weft::chan: async_send/async_recv need a nothrow move constructible T");
    if (!core_) return false;  // a nil channel: wait forever
    const attempt_result r = chan<typename Op::value_type>::attempt_once(
        core_, Op::try_now, static_cast<Op*>(this)->arg());
    if (r == attempt_result::waits) return false;  // locked: await_suspend queues us
    node_.result = chan_result::done;              // the node is not queued: it holds the outcome
    // Done: yield now if the budget is spent (the operation itself cannot switch in a task).
    return r == attempt_result::done;
  }
  bool await_suspend(std::coroutine_handle<> h) {
    if (node_.result == chan_result::done) return task_yield_begin(h.address());
    node_.w = &w_;  // from here finish() knows it waited
    w_.exclusive = true;
    if (!core_)
      return task_park_begin(park_, h.address(), w_, nullptr, 0, no_deadline, wait_reason::forever);
    node_.slot = static_cast<Op*>(this)->slot();
    queue().push_back(node_);
    park_.lock = &core_->lock;
    return task_park_begin(park_, h.address(), w_, &park_.lock, 1, no_deadline, Op::reason);
  }

 protected:
  chan_awaiter(chan_core* core, std::error_code* ec) noexcept : core_(core), ec_(ec) {}

  // How the wait ended: done or closed; a cancellation throws weft::cancelled, or returns
  // `cancelled` with *ec set (never at the end of weft::run, which always throws).
  chan_result finish() {
    if (!node_.w) return chan_result::done;  // done at once: never queued
    const wake_reason why = park_.parked ? task_park_end(park_, w_) : w_.reason();
    if (why == wake_reason::notified) return node_.result;
    if (core_) {
      core_->lock.lock();
      queue().remove(node_);
      core_->lock.unlock();
    }
    if (!ec_ || unwinding_for_shutdown() || !core_) throw_cancelled();
    *ec_ = std::make_error_code(std::errc::operation_canceled);
    return chan_result::cancelled;
  }
  node_queue& queue() noexcept { return Op::on_recvq ? core_->recvq : core_->sendq; }

  chan_core* core_;
  std::error_code* ec_;
  waiter w_;
  chan_node node_;
  task_park park_;
};

}  // namespace detail

template <class T>
class chan<T>::recv_awaiter : public detail::chan_awaiter<recv_awaiter> {
  using base = detail::chan_awaiter<recv_awaiter>;
  friend base;

 public:
  std::optional<T> await_resume() {
    if (this->ec_) this->ec_->clear();
    this->finish();
    return std::move(out_);
  }

 private:
  friend class chan<T>;
  using value_type = T;
  static constexpr bool on_recvq = true;
  static constexpr detail::wait_reason reason = detail::wait_reason::chan_receive;
  static bool try_now(detail::chan_core* c, void* self, detail::green_thread** wake) {
    return detail::chan_state<T>::try_recv(c, &static_cast<recv_awaiter*>(self)->out_, wake);
  }
  void* arg() noexcept { return this; }
  void* slot() noexcept { return &out_; }
  recv_awaiter(detail::chan_state<T>* s, std::error_code* ec) noexcept : base(s, ec) {}

  std::optional<T> out_;
};

template <class T>
class chan<T>::send_awaiter : public detail::chan_awaiter<send_awaiter> {
  using base = detail::chan_awaiter<send_awaiter>;
  friend base;

 public:
  void await_resume() {
    if (this->ec_) this->ec_->clear();
    const detail::chan_result r = this->finish();
    if (r == detail::chan_result::closed || (r == detail::chan_result::done && arg_.closed)) {
      if (!this->ec_) throw channel_closed("weft: send on closed channel");
      *this->ec_ = std::make_error_code(std::errc::broken_pipe);
    }
  }

 private:
  friend class chan<T>;
  using value_type = T;
  static constexpr bool on_recvq = false;
  static constexpr detail::wait_reason reason = detail::wait_reason::chan_send;
  static bool try_now(detail::chan_core* c, void* self, detail::green_thread** wake) {
    return detail::chan_state<T>::try_send_unless_closed(c, &static_cast<send_awaiter*>(self)->arg_,
                                                         wake);
  }
  void* arg() noexcept { return this; }
  void* slot() noexcept { return arg_.value; }
  send_awaiter(detail::chan_state<T>* s, T& value, std::error_code* ec) noexcept
      : base(s, ec), arg_{&value} {}

  typename detail::chan_state<T>::send_arg arg_;
};

}  // namespace weft
