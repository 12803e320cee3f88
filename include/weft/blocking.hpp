// weft::blocking: runs a call that blocks its OS thread (file I/O, getaddrinfo, a C library that
// waits) on a pool of OS threads, so that only the calling green thread waits, not its worker.
//
//   std::string body = weft::blocking([&] { return slow_c_library_call(path); });
//   // parks this green thread; the call runs on a pool thread, the worker stays free
//   std::string b = co_await weft::async_blocking([&] { return slow_c_library_call(path); });
//   // the same in a stackless weft::task
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/detail/spinlock.hpp"
#include "weft/detail/waiter.hpp"
#include "weft/task.hpp"

namespace weft {
namespace detail {

// One call handed to the pool. It lives on the caller's stack: the caller stays parked until the
// pool marks it done, even when weft::run ends meanwhile (stacks never move, so that is safe).
struct blocking_job {
  void (*invoke)(blocking_job*) noexcept = nullptr;
  blocking_job* next = nullptr;
  spinlock lock;
  bool done = false;  // under lock
  waiter_list waiters;
};

// Queues `job` on the running runtime's pool and parks the caller until it is done. Called only
// from a green thread.
void run_on_blocking_pool(blocking_job& job);
bool on_green_thread() noexcept;
// The same for a task (co_await it): throws weft::cancelled where the other does.
task<void> await_on_blocking_pool(blocking_job& job);

template <class R>
struct blocking_result {  // a value, or a reference kept as a pointer
  using stored = std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*, R>;
  std::optional<stored> value;
  template <class F>
  void set(F& f) {
    if constexpr (std::is_reference_v<R>) {
      value.emplace(std::addressof(f()));
    } else {
      value.emplace(f());
    }
  }
  R take() {
    if constexpr (std::is_reference_v<R>) {
      return static_cast<R>(**value);
    } else {
      return std::move(*value);
    }
  }
};
template <>
struct blocking_result<void> {
  template <class F>
  void set(F& f) {
    f();
  }
  void take() {}
};

// `f` and what it gave, as a job.
template <class F>
struct blocking_call : blocking_job {
  using R = std::invoke_result_t<F&>;
  F& fn;
  blocking_result<R> result;
  std::exception_ptr error;
  explicit blocking_call(F& f) : fn(f) {
    invoke = [](blocking_job* base) noexcept {
      auto* self = static_cast<blocking_call*>(base);
      try {
        self->result.set(self->fn);
      } catch (...) {
        self->error = std::current_exception();
      }
    };
  }
};

}  // namespace detail

// Runs `f` on the runtime's blocking pool and parks the calling green thread until `f` returns;
// returns its value or rethrows its exception. Other green threads keep the worker meanwhile.
// The pool grows on demand up to config::max_blocking_threads OS threads (calls beyond that
// queue), and a thread idle for 10 s exits. From a plain OS thread, `f` simply runs there.
// When weft::run ends, it waits for calls still running on the pool before it unwinds their
// callers, so `f` may safely use the caller's locals. Cancelled (weft/cancel.hpp), a call that
// no pool thread has started is taken back and never runs; one that runs is not interrupted:
// the caller waits for it (uncancellably), then throws weft::cancelled and drops its result.
template <class F>
auto blocking(F&& f) -> std::invoke_result_t<F&> {
  if (!detail::on_green_thread()) return f();
  detail::blocking_call<F> job(f);
  detail::run_on_blocking_pool(job);
  if (job.error) std::rethrow_exception(std::move(job.error));
  return job.result.take();
}

// blocking for a stackless weft::task: `co_await weft::async_blocking(f)` suspends the task
// while `f` (kept in the task's frame) runs on the pool, with the same results, exceptions and
// cancellation. `f` returns a value or void, not a reference.
template <class F>
auto async_blocking(F f) -> task<std::invoke_result_t<F&>> {
  using R = std::invoke_result_t<F&>;
  static_assert(!std::is_reference_v<R>, "weft::async_blocking: return a value or a pointer");
  detail::blocking_call<F> job(f);
  co_await detail::await_on_blocking_pool(job);
  if (job.error) std::rethrow_exception(std::move(job.error));
  co_return job.result.take();
}

}  // namespace weft
