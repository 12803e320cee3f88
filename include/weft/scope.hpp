// weft::scope: structured concurrency (Trio's nursery, Kotlin's coroutineScope, Go's errgroup
// with its context). Green threads started through a scope belong to it: none outlives it, the
// first one to fail cancels the others, and a deadline on the scope bounds every wait inside it.
//
//   std::vector<std::string> pages(urls.size());
//   {
//     weft::scope s(2s);                           // everything below must finish within 2 s
//     for (std::size_t i = 0; i < urls.size(); ++i)
//       s.go([&, i] { pages[i] = fetch(urls[i]); });
//     s.wait();  // joins all; rethrows the first exception (which cancelled the others), or
//   }            // throws weft::cancelled if the deadline passed first
//
// Rules:
// - s.go(f) starts f as a green thread of the scope; s.go_with_deadline(d, f) also cancels it
//   when d has passed. Children inherit the scope's deadline (and their own scopes nest inside).
// - Cancelling the scope (cancel(), a child's exception, the deadline, the destructor) requests
//   every child to stop (see weft/cancel.hpp). A child that ends by weft::cancelled is not an
//   error.
// - The thread that created a scope with a deadline has its own waits bounded by it too, as long
//   as the scope lives: Go's context.WithTimeout, without passing a context around.
// - ~scope cancels what is still running, then waits for it (uncancellably): no green thread
//   outlives its scope. An exception not collected by wait() is dropped with the scope.
// - A child for which no stack could be mapped when it was to run first never runs: its error
//   (std::system_error, ENOMEM) is the child's exception, and cancels the others.
// - A scope is used from green threads or OS threads; it cannot be moved or copied.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "weft/cancel.hpp"
#include "weft/config.hpp"
#include "weft/detail/spinlock.hpp"
#include "weft/detail/task.hpp"
#include "weft/detail/waiter.hpp"

namespace weft {
namespace detail {
struct cancel_batch;
}

class scope {
 public:
  // A scope bounded only by the deadline of the green thread that creates it (if any).
  scope() noexcept;
  template <class Rep, class Period>
  explicit scope(const std::chrono::duration<Rep, Period>& timeout)
      : scope(detail::to_deadline(detail::clock::now() +
                                  std::chrono::ceil<detail::clock::duration>(timeout)),
              0) {}
  template <class Clock, class Dur>
  explicit scope(const std::chrono::time_point<Clock, Dur>& deadline)
      : scope(detail::deadline_of(deadline), 0) {}
  ~scope();
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;

  // Starts `f` as a green thread of this scope. Throws as weft::go does (nothing started then).
  template <class F>
  void go(F&& f) {
    launch(spawn_options{}, deadline_, std::forward<F>(f));
  }
  template <class F>
  void go(const spawn_options& opts, F&& f) {
    launch(opts, deadline_, std::forward<F>(f));
  }
  // The same, cancelled once `timeout` has passed (or the scope's own deadline, if earlier).
  template <class Rep, class Period, class F>
  void go_with_deadline(const std::chrono::duration<Rep, Period>& timeout, F&& f) {
    const std::int64_t d = detail::to_deadline(detail::clock::now() +
                                               std::chrono::ceil<detail::clock::duration>(timeout));
    launch(spawn_options{}, d < deadline_ ? d : deadline_, std::forward<F>(f));
  }

  // Waits until every green thread of the scope has finished. Rethrows the first exception one
  // of them threw (it cancelled the others). Throws weft::cancelled if the scope's deadline passed
  // first or the caller was cancelled meanwhile; in both cases the children are cancelled and
  // waited for before it throws. The scope may be used again afterwards.
  void wait();
  // Requests every green thread of the scope, and any it starts from now on, to stop. Does not
  // wait. Callable from any green or OS thread, the scope's own children included.
  void cancel() noexcept;
  bool cancel_requested() const noexcept;
  // Green threads of the scope that have not finished.
  std::size_t active() const noexcept;
  // The scope's deadline (steady-clock ns; INT64_MAX: none).
  std::int64_t deadline_ns() const noexcept { return deadline_; }

 private:
  struct child {
    child* prev = nullptr;
    child* next = nullptr;
    detail::green_thread* g = nullptr;
  };

  scope(std::int64_t deadline, int) noexcept;

  template <class F>
  void launch(const spawn_options& opts, std::int64_t deadline, F&& f) {
    using Fn = std::decay_t<F>;
    struct body {
      scope* owner;
      child node;
      Fn fn;
      bool admitted = false;  // counted in the scope and not yet run: its end must be reported

      body(scope* s, F&& f) : owner(s), fn(std::forward<F>(f)) {}
      body(body&& o) : owner(o.owner), fn(std::move(o.fn)) {}  // before admission only
      // Destroyed without having run (weft::run ended, or no stack could be had for it): the
      // scope still hears of its end, so that nobody waits for it forever.
      ~body() {
        if (!admitted) return;
        std::exception_ptr why = detail::why_never_ran();
        if (why) owner->child_failed(std::move(why));
        owner->child_done(node, !why);
      }
      void operator()() {
        admitted = false;
        bool stopped = false;
        try {
          fn();
        } catch (const cancelled&) {
          stopped = true;  // on request: not an error, and the green thread ends here
        } catch (...) {
          owner->child_failed(std::current_exception());
        }
        owner->child_done(node, stopped);  // last: the scope may be gone once this returns
      }
    };
    detail::start_task(opts, body(this, std::forward<F>(f)),
                       [this, deadline](detail::green_thread* g, body& b) noexcept {
                         b.node.g = g;
                         admit(b.node, deadline);
                         b.admitted = true;
                       });
  }

  // Links a child about to start; it inherits `deadline` and, if the scope is cancelled, the
  // request.
  void admit(child& c, std::int64_t deadline) noexcept;
  void child_failed(std::exception_ptr e) noexcept;
  void child_done(child& c, bool stopped) noexcept;
  void cancel_locked(detail::cancel_batch& batch) noexcept;
  void join_all() noexcept;  // uncancellable

  mutable detail::spinlock lock_;
  child* head_ = nullptr;
  std::size_t live_ = 0;
  detail::waiter_list waiters_;
  std::exception_ptr error_;
  bool cancelled_ = false;
  bool children_stopped_ = false;  // a child ended by weft::cancelled since the last wait()
  std::int64_t deadline_ = detail::no_deadline;
  // The green thread that created the scope, whose own deadline the scope's bounds meanwhile.
  detail::green_thread* creator_ = nullptr;
  std::int64_t creator_deadline_ = detail::no_deadline;
};

}  // namespace weft
