// weft::join_handle<R>: the result of a green thread started with weft::spawn.
//
//   weft::join_handle<int> h = weft::spawn([] { return 6 * 7; });
//   int v = h.join();                            // 42, or rethrows the green thread's exception
//   h.cancel();                                  // (before join) asks it to stop: weft/cancel.hpp
#pragma once

#include <atomic>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "weft/detail/event.hpp"
#include "weft/detail/task.hpp"

namespace weft {
namespace detail {

// Shared by the green thread and its handle; freed by whichever lets go last.
// Asks the green thread `target` to stop, if `done` is not set yet (runtime/cancel.cpp).
void cancel_joinable(event& done, green_thread*& target) noexcept;

template <class R>
struct join_state {
  std::atomic<int> refs{2};
  event done;
  green_thread* target = nullptr;  // the green thread until it finishes (under done's lock)
  std::optional<std::conditional_t<std::is_void_v<R>, char, R>> value;
  std::exception_ptr error;

  static join_state* create() {
    void* p = runtime_alloc(sizeof(join_state));
    return ::new (p) join_state;
  }
  // The green thread is done with it: wake joiners, then let go.
  void finish() noexcept {
    done.set(&target);
    release();
  }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      this->~join_state();
      runtime_free(this, sizeof(join_state));
    }
  }
};

}  // namespace detail

// Move-only. join() waits (parking a green thread, blocking an OS thread) and returns the green
// thread's value or rethrows its exception. Dropping an unjoined handle detaches the green thread
// (as Tokio's JoinHandle does), and its exception, if any, is discarded with the handle.
// cancel() asks the green thread to stop (weft/cancel.hpp): join() then throws weft::cancelled,
// unless it finished before the request reached a wait.
//
//   auto h = weft::spawn([&] { return in.recv(); });   // parked: nothing arrives
//   h.cancel();
//   try { h.join(); } catch (const weft::cancelled&) { /* it stopped as asked */ }
template <class R>
class join_handle {
 public:
  join_handle() = default;
  explicit join_handle(detail::join_state<R>* st) noexcept : st_(st) {}
  join_handle(join_handle&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  join_handle& operator=(join_handle&& o) noexcept {
    if (this != &o) {
      reset();
      st_ = std::exchange(o.st_, nullptr);
    }
    return *this;
  }
  ~join_handle() { reset(); }

  bool joinable() const noexcept { return st_ != nullptr; }
  // True once the green thread has finished (join() would not wait).
  bool is_finished() const noexcept { return st_ && st_->done.is_set(); }
  void detach() noexcept { reset(); }
  // Asks the green thread to stop: its current or next cancellable wait throws weft::cancelled.
  // Does not wait for it (join() does). Callable from any green or OS thread; no-op once it has
  // finished.
  void cancel() noexcept {
    if (st_) detail::cancel_joinable(st_->done, st_->target);
  }

  R join() {
    if (!st_) throw std::logic_error("weft::join_handle::join: nothing to join");
    st_->done.wait();
    return take_result();
  }

  // join() for a weft::task: `int v = co_await std::move(h);` suspends the task instead of
  // parking a stack. Same result, exception and cancellation as join().
  auto operator co_await() && {
    if (!st_) throw std::logic_error("weft::join_handle: nothing to join");
    struct awaiter : detail::event::awaiter {
      join_handle& h;
      awaiter(join_handle& handle) noexcept : detail::event::awaiter(handle.st_->done), h(handle) {}
      R await_resume() {
        detail::event::awaiter::await_resume();
        return h.take_result();
      }
    };
    return awaiter(*this);
  }

 private:
  R take_result() {
    detail::join_state<R>* st = std::exchange(st_, nullptr);
    struct release_on_exit {
      detail::join_state<R>* s;
      ~release_on_exit() { s->release(); }
    } guard{st};
    // Take the exception out of the shared state: the exception object is then referenced from
    // this thread only, and its last owner is never the finished green thread (libstdc++'s
    // uninstrumented refcounts would otherwise hide the hand-over from TSan).
    if (std::exception_ptr error = std::move(st->error)) std::rethrow_exception(std::move(error));
    if constexpr (!std::is_void_v<R>) return std::move(*st->value);
  }

  void reset() noexcept {
    if (st_) std::exchange(st_, nullptr)->release();
  }
  detail::join_state<R>* st_ = nullptr;
};

}  // namespace weft
