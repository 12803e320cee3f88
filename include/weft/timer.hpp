// Time as channels (Go's time.After and time.Ticker): a timer fires by sending on a channel, so
// it composes with select. Timers share the per-worker timer heaps with sleeps and deadlines;
// none costs a green thread.
//
//   auto timeout = weft::after(std::chrono::seconds(1));
//   weft::select(weft::on_recv(results, [](std::optional<int> v) { use(v); }),
//                weft::on_recv(timeout, [](auto) { give_up(); }));
//   weft::ticker t(std::chrono::milliseconds(100));   // t.channel() ticks every 100 ms
#pragma once

#include <chrono>
#include <cstdint>

#include "weft/chan.hpp"

namespace weft {

namespace detail {
struct ticker_state;
}

// A channel that receives the time once, `d` from now (buffered: the timer never blocks, and
// nobody has to receive). Needs a running runtime (std::logic_error otherwise). A timer still
// pending when weft::run ends is discarded.
chan<std::chrono::steady_clock::time_point> after(std::chrono::nanoseconds d);

// Sends the time on channel() every `period`. Like Go's Ticker, a receiver that falls behind
// gets no backlog: the channel holds one tick and later ones are dropped until it is taken.
// Stop it (or destroy it) to release it. Needs a running runtime.
class ticker {
 public:
  explicit ticker(std::chrono::nanoseconds period);  // period must be positive
  ~ticker();
  ticker(const ticker&) = delete;
  ticker& operator=(const ticker&) = delete;

  chan<std::chrono::steady_clock::time_point>& channel() noexcept { return ch_; }
  // No tick is sent after stop() returns; the channel stays open (as in Go).
  void stop() noexcept;
  // Stops it and starts it again with a new period, the first tick one period from now.
  void reset(std::chrono::nanoseconds period);
  std::uint64_t dropped() const noexcept;  // ticks dropped because nobody took the last one

 private:
  chan<std::chrono::steady_clock::time_point> ch_;
  detail::ticker_state* state_ = nullptr;
};

}  // namespace weft
