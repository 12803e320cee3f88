// weft::task<T>: stackless green threads. A task is a C++20 coroutine that runs on weft's own
// workers, queues and stealing, like a green thread, but has no stack: while it waits it holds
// only its coroutine frame (hundreds of bytes, not a 4 KiB stack page). It waits through
// awaitables (co_await), on the same channels as green threads and OS threads.
//
//   weft::task<int> sum(weft::chan<int> in) {
//     int total = 0;
//     while (auto v = co_await in.async_recv()) total += *v;  // suspends this task only
//     co_return total;
//   }
//   auto h = weft::spawn(sum(ch));           // join_handle<int>: join() from a green thread
//   weft::go(consume(ch));                   // detached, like go(f)
//
// What a task can await: another task; `co_await std::move(join_handle)`; ch.async_recv() and
// ch.async_send(v) (with error_code forms); async_select(cases...) (weft/select.hpp);
// async_sleep_for/until; async_yield(); wait_group::async_wait(); mutex::async_lock();
// condition_variable::async_wait(m); the sockets' and streams' async_read, async_write_all,
// async_accept, async_connect (weft/io.hpp, weft/net.hpp), net::async_resolve, and
// async_blocking(f) (weft/blocking.hpp) for any call that blocks its thread.
//
// When to pick a task: many waiting things (connections, timers, pipeline stages) that only
// await weft's operations. Pick a stackful green thread for anything else: any code and any
// library call may block inside it. A task must not call a blocking wait (a channel's send or
// recv, sleep_for, mutex::lock): that throws std::logic_error; co_await the async_ form instead.
//
// A task is lazy: it runs once started by go/spawn, or when another task co_awaits it (then it
// runs inside the awaiting task, on its record, and its value or exception comes out of the
// co_await). Cancellation (weft/cancel.hpp) reaches a task's waits as a green thread's: they
// throw weft::cancelled (or report operation_canceled through an error_code form). At the end
// of weft::run, a suspended task is resumed cancelled and unwinds; one never started is
// destroyed unrun. An exception escaping a detached task ends the program, naming it.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "weft/chan.hpp"
#include "weft/condition_variable.hpp"
#include "weft/config.hpp"
#include "weft/detail/task.hpp"
#include "weft/detail/waiter.hpp"
#include "weft/join_handle.hpp"
#include "weft/mutex.hpp"

namespace weft {

template <class T = void>
class task;

namespace detail {

struct task_promise_base {
  std::coroutine_handle<> continuation;  // the task awaiting this one; null at the top
  std::exception_ptr error;

  // Frames are reused per worker, as records are.
  static void* operator new(std::size_t size) { return task_frame_alloc(size); }
  static void operator delete(void* p, std::size_t size) noexcept { task_frame_free(p, size); }

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      if (std::coroutine_handle<> c = h.promise().continuation) return c;
      return std::noop_coroutine();  // the top: back to the worker, which sees it done
    }
    void await_resume() const noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct task_promise : task_promise_base {
  std::optional<T> value;
  task<T> get_return_object() noexcept;
  template <class U = T>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T take() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct task_promise<void> : task_promise_base {
  task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (error) std::rethrow_exception(error);
  }
};

// What a task's record holds. `resume_at` comes first: the runtime's park and yield store there
// the coroutine to resume (the innermost awaiting task), which differs from `root` while a task
// awaits another; null once the task has ended, which is how the runtime learns that it did.
struct task_slot {
  void* resume_at;
  std::coroutine_handle<> root;
  task_promise_base* promise;

  static void invoke(void* s) {
    auto& slot = *static_cast<task_slot*>(s);
    std::coroutine_handle<>::from_address(slot.resume_at).resume();
    if (!slot.root.done()) return;  // suspended: its awaiter told the runtime why
    slot.resume_at = nullptr;
    std::exception_ptr error = std::move(slot.promise->error);
    std::exchange(slot.root, {}).destroy();
    if (error) task_failed(std::move(error));
  }
  static void destroy(void* s) {
    auto& slot = *static_cast<task_slot*>(s);
    if (slot.root) slot.root.destroy();
  }
  static constexpr task_vtable vtable{&invoke, &destroy, true};
};

template <class P, class Hook>
void start_coroutine(const spawn_options& opts, std::coroutine_handle<P> h, Hook&& before_submit) {
  green_thread* g = nullptr;
  void* storage =
      allocate_task(sizeof(task_slot), alignof(task_slot), &task_slot::vtable, opts, &g);
  ::new (storage) task_slot{h.address(), h, &h.promise()};
  before_submit(g);
  submit_task(g);
}

}  // namespace detail

// A coroutine that runs as a stackless green thread (see the top of this file). Move-only; it
// owns its frame until started (go, spawn) or awaited.
template <class T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::task_promise<T>;
  using value_type = T;

  task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  task& operator=(task o) noexcept {
    std::swap(h_, o.h_);
    return *this;
  }
  ~task() {
    if (h_) h_.destroy();
  }

  // Runs this task inside the awaiting one, to its end: its value, or its exception rethrown.
  auto operator co_await() && noexcept {
    struct awaiter {
      std::coroutine_handle<promise_type> h;
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> parent) noexcept {
        h.promise().continuation = parent;
        return h;
      }
      T await_resume() { return h.promise().take(); }
    };
    return awaiter{h_};
  }

  // Gives up the frame (for go and spawn).
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, {}); }

 private:
  friend promise_type;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

namespace detail {

template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<task_promise<T>>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<task_promise<void>>::from_promise(*this));
}

// The spawned task's hold on its join state: a frame destroyed without running (weft::run
// ended first) still completes the state, with that as its error.
template <class R>
struct task_join_ref {
  join_state<R>* st;
  explicit task_join_ref(join_state<R>* s) noexcept : st(s) {}
  task_join_ref(task_join_ref&& o) noexcept : st(std::exchange(o.st, nullptr)) {}
  task_join_ref& operator=(task_join_ref&&) = delete;
  ~task_join_ref() {
    if (!st) return;
    st->error = std::make_exception_ptr(
        std::runtime_error("weft: task was destroyed unrun because weft::run ended"));
    finish();
  }
  void finish() noexcept { std::exchange(st, nullptr)->finish(); }
};

// The top of a spawned task: runs it and hands its result to the join state.
template <class R>
task<void> report_to_join(task<R> body, task_join_ref<R> ref) {
  join_state<R>* s = ref.st;
  try {
    if constexpr (std::is_void_v<R>) {
      co_await std::move(body);
    } else {
      s->value.emplace(co_await std::move(body));
    }
  } catch (const weft::cancelled&) {
    s->error = unwinding_for_shutdown() ? std::make_exception_ptr(std::runtime_error(
                                              "weft: task was unwound because weft::run ended"))
                                        : std::current_exception();
  } catch (...) {
    s->error = std::current_exception();
  }
  ref.finish();
}

}  // namespace detail

// Starts a detached task (its value, if any, is dropped). An exception escaping it ends the
// program with a message naming it, as for go(f). Throws as go(f) does when no runtime runs.
template <class T>
void go(const spawn_options& opts, task<T> t) {
  auto h = t.release();
  try {
    detail::start_coroutine(opts, h, [](detail::green_thread*) noexcept {});
  } catch (...) {
    h.destroy();
    throw;
  }
}
template <class T>
void go(task<T> t) {
  go(spawn_options{}, std::move(t));
}

// Starts a task whose result join() collects (from a green thread or an OS thread), as
// spawn(f) does; cancel() reaches its waits.
template <class T>
join_handle<T> spawn(const spawn_options& opts, task<T> t) {
  auto* st = detail::join_state<T>::create();
  std::coroutine_handle<detail::task_promise<void>> h;
  try {
    h = detail::report_to_join<T>(std::move(t), detail::task_join_ref<T>(st)).release();
  } catch (...) {
    st->release();  // the handle's; the frame's reference was let go of with its argument
    throw;
  }
  try {
    detail::start_coroutine(opts, h, [st](detail::green_thread* g) noexcept { st->target = g; });
  } catch (...) {
    h.destroy();    // its join reference completes the state, with an error
    st->release();  // the handle's reference
    throw;
  }
  return join_handle<T>(st);
}
template <class T>
join_handle<T> spawn(task<T> t) {
  return spawn(spawn_options{}, std::move(t));
}

namespace detail {

struct yield_awaiter {
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    unwind = !task_yield_begin(h.address());
    return !unwind;
  }
  void await_resume() const {
    if (unwind) throw_cancelled();
  }
  bool unwind = false;
};

struct sleep_awaiter {
  explicit sleep_awaiter(std::int64_t d) noexcept : deadline(d) {}
  std::int64_t deadline;
  waiter w{};
  task_park park{};
  alignas(8) unsigned char timer[timer_space_size]{};  // a sleep always has one: no allocation

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    return task_park_begin(park, h.address(), w, nullptr, 0, deadline, wait_reason::sleep, timer);
  }
  void await_resume() {
    const wake_reason why = park.parked ? task_park_end(park, w) : w.reason();
    if (why == wake_reason::cancelled) throw_cancelled();
  }
};

}  // namespace detail

class condition_variable::release_and_wait {
 public:
  release_and_wait(condition_variable& cv, mutex& m) noexcept : cv_(cv), m_(m) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    cv_.enqueue(w_);  // takes cv_.lock_: a notify after m_ is released finds us queued
    m_.unlock();
    park_.lock = &cv_.lock_;
    return detail::task_park_begin(park_, h.address(), w_, &park_.lock, 1, detail::no_deadline,
                                   detail::wait_reason::condition_variable);
  }
  bool await_resume() noexcept {
    const detail::wake_reason why = park_.parked ? detail::task_park_end(park_, w_) : w_.reason();
    if (why == detail::wake_reason::notified) return true;
    cv_.lock_.lock();
    cv_.waiters_.remove(w_);
    cv_.lock_.unlock();
    return false;
  }

 private:
  condition_variable& cv_;
  mutex& m_;
  detail::waiter w_;
  detail::task_park park_;
};

inline task<void> condition_variable::async_wait(mutex& m) {
  const bool notified = co_await release_and_wait(*this, m);
  co_await m.async_lock();
  if (!notified) detail::throw_cancelled();
}

// Lets the other runnable green threads and tasks run; the task goes to the back of its
// worker's queue.
inline detail::yield_awaiter async_yield() noexcept {
  return {};
}

// Suspends the task until `tp` (never earlier). Cancellable: throws weft::cancelled.
template <class Clock, class Dur>
detail::sleep_awaiter async_sleep_until(const std::chrono::time_point<Clock, Dur>& tp) {
  return detail::sleep_awaiter{detail::deadline_of(tp)};
}
template <class Rep, class Period>
detail::sleep_awaiter async_sleep_for(std::chrono::duration<Rep, Period> d) {
  const auto ns = std::chrono::ceil<std::chrono::nanoseconds>(d).count();
  return detail::sleep_awaiter{detail::now_ns() + (ns > 0 ? ns : 0)};
}

}  // namespace weft
