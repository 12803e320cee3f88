// Cancellation: how a green thread is asked to stop, and how it protects what must finish.
//
// A request (weft::scope::cancel, join_handle::cancel, a scope's deadline, the end of weft::run)
// is delivered at the green thread's next wait that can block indefinitely: a channel send or
// recv, select without on_default, sleep, condition_variable and wait_group waits, join, socket
// reads, writes, connect and accept, and the wait for weft::blocking. That wait throws
// weft::cancelled (the std::error_code overloads return std::errc::operation_canceled instead;
// chan::recv(ec), chan::send(v, ec) and select's on_cancelled are the channels' no-throw forms,
// for crowds that are stopped often: a throw costs more than the wake-up itself).
// A request that arrives while the green thread runs waits for its next such wait; one that
// arrives while it waits wakes it. Requests are sticky: every later wait throws too, until the
// green thread ends, except inside a cancel_shield. mutex::lock is never cancelled.
//
// Cancel racing with completion has one outcome: a value a recv or select took is returned (the
// request then waits for the next wait); a send that did not deliver throws and the value stays
// with the caller.
//
//   weft::scope s;
//   s.go([&] {
//     try {
//       for (;;) out.send(work());         // throws weft::cancelled once s is cancelled
//     } catch (const weft::cancelled&) {
//       weft::cancel_shield shield;         // cleanup may wait: nothing cancels it here
//       flush(out);
//       throw;                              // let the scope see it ended by cancellation
//     }
//   });
//   s.cancel();
#pragma once

#include <cstdint>
#include <stop_token>

namespace weft {

// Thrown by a cancelled wait. Deliberately not derived from std::exception, so that
// `catch (const std::exception&)` does not swallow it; code that catches `...` must rethrow it.
// weft::scope and join() treat it as "stopped on request", not as an error.
struct cancelled {
  const char* what() const noexcept { return "weft: green thread cancelled"; }
};

// While alive, no wait of the calling green thread is cancelled (its deadline is suspended too):
// for cleanup that must complete, and destructors that wait. A request that arrives meanwhile is
// kept and delivered at the first wait after the outermost shield ends. Nests. No-op on an OS
// thread.
class cancel_shield {
 public:
  cancel_shield() noexcept;
  ~cancel_shield();
  cancel_shield(const cancel_shield&) = delete;
  cancel_shield& operator=(const cancel_shield&) = delete;
};

namespace this_green_thread {

// True once the calling green thread was asked to stop, or while a deadline that bounds it has
// passed. False on an OS thread.
bool cancel_requested() noexcept;
// Throws weft::cancelled if cancel_requested() and no cancel_shield is alive: a check point for
// long computations that do not wait.
void throw_if_cancelled();
// A std::stop_token that is stopped when the calling green thread is asked to stop (cancel(), its
// scope's cancel or first error, the end of weft::run), so std::jthread-style code and
// std::stop_callback work unchanged. A deadline does not stop it: a deadline ends the waits it
// bounds, and a scope's deadline stops bounding its creator once the scope ends. On an OS
// thread: a token that never stops.
std::stop_token stop_token();
// The calling green thread's deadline (steady-clock nanoseconds; INT64_MAX: none): the earliest
// deadline of the scopes it runs in.
std::int64_t deadline_ns() noexcept;

}  // namespace this_green_thread
}  // namespace weft
