// weft::select: Go's select statement over channel operations, a timeout and a default.
//
//   std::size_t i = weft::select(weft::on_recv(in, [](std::optional<int> v) { ... }),
//                                weft::on_send(out, 42, [] { ... }),
//                                weft::on_timeout(5ms, [] { ... }));
//
// Among the cases ready at once, one is chosen uniformly at random; without on_default, select
// blocks until one is. Only the chosen case's callback runs; select returns its index. A recv
// case on a closed channel is ready and receives std::nullopt; a send case on a closed channel
// throws channel_closed. Cases on a nil channel are never ready. A channel may appear in several
// cases. A select that blocks is cancellable (weft/cancel.hpp): it throws weft::cancelled, and
// no case ran; with an on_cancelled case, that case runs instead.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "weft/chan.hpp"
#include "weft/detail/chan_core.hpp"

namespace weft {
namespace detail {

struct select_access {
  template <class T>
  static chan_state<T>* state(const chan<T>& c) noexcept {
    return c.s_;
  }
};

template <class T, class F>
struct recv_case {
  const chan<T>& ch;
  F fn;
  std::optional<T> value{};
  void prepare(select_case& c) {
    c.k = select_case::kind::recv;
    c.c = select_access::state(ch);
    c.ops = &chan_state<T>::ops;
    c.slot = &value;
  }
  void fire() { fn(std::move(value)); }
};

template <class T, class F>
struct send_case {
  const chan<T>& ch;
  T value;
  F fn;
  void prepare(select_case& c) {
    c.k = select_case::kind::send;
    c.c = select_access::state(ch);
    c.ops = &chan_state<T>::ops;
    c.slot = &value;
  }
  void fire() { fn(); }
};

template <class F>
struct timeout_case {
  std::int64_t deadline;
  F fn;
  void prepare(select_case& c) {
    c.k = select_case::kind::timeout;
    c.deadline = deadline;
  }
  void fire() { fn(); }
};

template <class F>
struct cancelled_case {
  F fn;
  void prepare(select_case& c) { c.k = select_case::kind::cancelled; }
  void fire() { fn(); }
};

template <class F>
struct default_case {
  F fn;
  void prepare(select_case& c) { c.k = select_case::kind::default_; }
  void fire() { fn(); }
};

}  // namespace detail

// Receives from `ch`; `fn(std::optional<T>)` gets the value, or std::nullopt if ch is closed.
template <class T, class F>
detail::recv_case<T, std::decay_t<F>> on_recv(const chan<T>& ch, F&& fn) {
  return {ch, std::forward<F>(fn)};
}

// Sends `value` on `ch`; `fn()` runs once it is sent. If another case wins, value is dropped.
template <class T, class V, class F>
detail::send_case<T, std::decay_t<F>> on_send(const chan<T>& ch, V&& value, F&& fn) {
  return {ch, T(std::forward<V>(value)), std::forward<F>(fn)};
}

// Ready once `d` has passed since select began.
template <class Rep, class Period, class F>
detail::timeout_case<std::decay_t<F>> on_timeout(std::chrono::duration<Rep, Period> d, F&& fn) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return {detail::now_ns() + (ns > 0 ? ns : 0), std::forward<F>(fn)};
}

// Runs when the select's wait is cancelled (weft/cancel.hpp), instead of weft::cancelled being
// thrown: Go's `case <-ctx.Done():`, and no exception to unwind. A select with on_default never
// waits, so never runs it.
template <class F>
detail::cancelled_case<std::decay_t<F>> on_cancelled(F&& fn) {
  return {std::forward<F>(fn)};
}

// Runs when no other case is ready: makes select non-blocking.
template <class F>
detail::default_case<std::decay_t<F>> on_default(F&& fn) {
  return {std::forward<F>(fn)};
}

namespace detail {

// A task's select: the cases are the temporaries of the co_await's full expression, which live
// until it ends, so the awaiter keeps references to them.
template <class... Cases>
class select_awaiter {
 public:
  explicit select_awaiter(Cases&... cases) noexcept : cases_(cases...) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (std::get<I>(cases_).prepare(raw_[I]), ...);
    }
    (std::index_sequence_for<Cases...>{});
    state_.locks = locks_;
    return select_task_begin(state_, raw_, sizeof...(Cases), h.address());
  }
  std::size_t await_resume() {
    const std::size_t chosen = select_task_end(state_, raw_, sizeof...(Cases));
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((I == chosen ? (std::get<I>(cases_).fire(), 0) : 0), ...);
    }
    (std::index_sequence_for<Cases...>{});
    return chosen;
  }

 private:
  std::tuple<Cases&...> cases_;
  select_case raw_[sizeof...(Cases)];
  spinlock* locks_[sizeof...(Cases)];
  select_task_state state_;
};

template <class C>
struct moves_without_throwing : std::true_type {};
template <class T, class F>
struct moves_without_throwing<recv_case<T, F>> : std::is_nothrow_move_constructible<T> {};
template <class T, class F>
struct moves_without_throwing<send_case<T, F>> : std::is_nothrow_move_constructible<T> {};

}  // namespace detail

// select for a weft::task: `std::size_t i = co_await weft::async_select(cases...);` with the
// same cases and rules as select, suspending the task instead of parking a stack. The channels'
// element types must move without throwing.
template <class... Cases>
detail::select_awaiter<std::remove_reference_t<Cases>...> async_select(Cases&&... cases) {
  static_assert(sizeof...(Cases) > 0, "weft::async_select needs at least one case");
  static_assert((detail::moves_without_throwing<std::remove_cvref_t<Cases>>::value && ...),
                "weft::async_select: channel element types must be nothrow move constructible");
  return detail::select_awaiter<std::remove_reference_t<Cases>...>(cases...);
}

template <class... Cases>
std::size_t select(Cases&&... cases) {
  static_assert(sizeof...(Cases) > 0, "weft::select needs at least one case");
  detail::select_case raw[sizeof...(Cases)];
  auto all = std::forward_as_tuple(cases...);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (std::get<I>(all).prepare(raw[I]), ...);
  }
  (std::index_sequence_for<Cases...>{});
  const std::size_t chosen = detail::select_run(raw, sizeof...(Cases));
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((I == chosen ? (std::get<I>(all).fire(), 0) : 0), ...);
  }
  (std::index_sequence_for<Cases...>{});
  return chosen;
}

}  // namespace weft
