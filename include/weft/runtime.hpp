// Running green threads: weft::run, go, spawn, yield, sleep.
//
//   int main() {
//     return weft::run([] {                      // the calling thread becomes worker 0
//       weft::go([] { weft::sleep_for(std::chrono::milliseconds(10)); });
//       auto h = weft::spawn([] { return 42; });
//       return h.join() == 42 ? 0 : 1;           // main's int is run's result
//     });
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "weft/config.hpp"
#include "weft/detail/task.hpp"
#include "weft/detail/waiter.hpp"
#include "weft/join_handle.hpp"

namespace weft {
namespace detail {
int run_main(std::function<int()> main, const config& cfg);
void yield_now();
void sleep_until_ns(std::int64_t deadline);
}  // namespace detail

// Runs `main` as the first green thread on a fresh runtime and blocks the calling OS thread
// (which becomes worker 0) until `main` returns. Green threads still parked then are unwound:
// their destructors run. Returns main's int (0 for void); rethrows main's exception.
// Throws std::logic_error if called while a runtime is already running.
template <class F>
int run(F&& main, const config& cfg = {}) {
  if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
    return detail::run_main(
        [&main]() {
          main();
          return 0;
        },
        cfg);
  } else {
    return detail::run_main([&main]() { return static_cast<int>(main()); }, cfg);
  }
}

// Starts a detached green thread. An exception escaping it ends the program with a message that
// names the green thread and the exception (as a Go panic does). Callable from green threads and,
// while a runtime runs, from plain OS threads. Throws std::logic_error when no runtime runs, and
// std::system_error when no stack can be had for it now. Stacks are taken when a green thread
// first runs: one that then finds none (the kernel maps no more) ends without running, as if it
// had thrown that std::system_error (for a detached one, the end of the program).
template <class F>
void go(F&& f) {
  detail::start_task(spawn_options{}, std::forward<F>(f));
}
template <class F>
void go(const spawn_options& opts, F&& f) {
  detail::start_task(opts, std::forward<F>(f));
}

// Starts a green thread whose result (value or exception) is collected by join(). A green thread
// for which no stack could be mapped when it was to run first never runs: join() throws that
// std::system_error (ENOMEM).
template <class F>
auto spawn(const spawn_options& opts, F&& f)
    -> join_handle<std::invoke_result_t<std::decay_t<F>&>> {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  auto* st = detail::join_state<R>::create();
  // The green thread's reference to the state: a body destroyed without running (weft::run
  // ended first, no stack could be had for it, or the spawn failed) still completes the state,
  // with the reason as its error, and lets go of it.
  struct state_ref {
    detail::join_state<R>* st;
    explicit state_ref(detail::join_state<R>* s) noexcept : st(s) {}
    state_ref(state_ref&& o) noexcept : st(std::exchange(o.st, nullptr)) {}
    state_ref& operator=(state_ref&&) = delete;
    ~state_ref() {
      if (!st) return;
      st->error = detail::why_never_ran();
      if (!st->error)
        st->error = std::make_exception_ptr(
            std::runtime_error("weft: green thread was unwound because weft::run ended"));
      finish();
    }
    void finish() noexcept { std::exchange(st, nullptr)->finish(); }
  };
  auto body = [ref = state_ref(st), fn = std::forward<F>(f)]() mutable {
    detail::join_state<R>* s = ref.st;
    try {
      if constexpr (std::is_void_v<R>) {
        fn();
      } else {
        s->value.emplace(fn());
      }
    } catch (const weft::cancelled&) {
      s->error = detail::unwinding_for_shutdown()
                     ? std::make_exception_ptr(std::runtime_error(
                           "weft: green thread was unwound because weft::run ended"))
                     : std::current_exception();
    } catch (...) {
      s->error = std::current_exception();
    }
    ref.finish();
  };
  try {
    detail::start_task(opts, std::move(body),
                       [st](detail::green_thread* g, auto&) noexcept { st->target = g; });
  } catch (...) {
    st->release();  // the handle's reference; the body let go of its own
    throw;
  }
  return join_handle<R>(st);
}
template <class F>
auto spawn(F&& f) {
  return spawn(spawn_options{}, std::forward<F>(f));
}

// Lets other runnable green threads run; the caller goes to the back of its worker's queue.
// On a plain OS thread: std::this_thread::yield().
inline void yield() {
  detail::yield_now();
}

// Parks the calling green thread (or blocks the OS thread) until `tp`; never wakes earlier.
// Cancellable (weft/cancel.hpp): throws weft::cancelled.
template <class Clock, class Dur>
void sleep_until(const std::chrono::time_point<Clock, Dur>& tp) {
  if constexpr (std::is_same_v<Clock, detail::clock>) {
    detail::sleep_until_ns(detail::to_deadline(tp));
  } else {
    auto rel = tp - Clock::now();
    detail::sleep_until_ns(detail::to_deadline(detail::clock::now() +
                                               std::chrono::ceil<detail::clock::duration>(rel)));
  }
}
template <class Rep, class Period>
void sleep_for(const std::chrono::duration<Rep, Period>& d) {
  if (d <= d.zero()) return;
  sleep_until(detail::clock::now() + std::chrono::ceil<detail::clock::duration>(d));
}

// True when called on a green thread (inside weft::run).
bool in_green_thread() noexcept;
// The calling green thread's id (unique within a process, never 0); 0 on a plain OS thread.
std::uint64_t this_green_thread_id() noexcept;

}  // namespace weft
