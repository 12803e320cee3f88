// Whether a worker's green threads are worth moving to another core, judged by the monitor once
// a period from what the worker did in it (runtime/monitor.cpp applies the verdict). Pure, so
// that tests/move_judge_test.cpp can drive it through periods of its own.
#pragma once

#include <algorithm>
#include <cstdint>

namespace weft::detail {

// Moving a green thread to another core costs its record's and stack's cache lines there: a few
// hundred ns on this class of machine. Slices shorter than this stay where they are.
inline constexpr std::int64_t min_slice_worth_moving_ns = 1'000;
// What one operation on a channel last used on another core costs, with the cache-line transfers
// and the cross-core wake-up and migration it brings: measured here from 4 producers and 4
// consumers on one channel split over 2 cores (~115 hand-overs per 300 µs period, ~4x slower
// per message than on one core).
inline constexpr std::int64_t handover_cost_ns = 2000;
// How long green threads found talking across cores stay gathered before spreading is tried
// again; doubled each time the try shows the same (exponential back-off), up to the maximum.
// Long enough to span the spawning phase of a program that spawns and then talks (Go's daisy
// chain: 10,000 green threads spawned in ~4 ms, then a value passed through them): at 1 ms it
// took that chain seven rounds to settle on one core, each round split over two and ~2x slower.
inline constexpr std::int64_t gather_min_ns = 8'000'000;
inline constexpr std::int64_t gather_max_ns = 128'000'000;
// Talk across cores seen again this soon after a gathering ended (or within twice its length, if
// longer) means the try at spreading failed: the next gathering lasts twice as long.
inline constexpr std::int64_t gather_again_within_ns = 20'000'000;

// What the judgement remembers of a worker from one period to the next.
struct move_history {
  std::int64_t gather_until = 0;  // keep its green threads on it until then (0: not gathered)
  std::int64_t gather_for = gather_min_ns;
};

// What a worker did over one period.
struct move_period {
  std::int64_t now = 0;         // the period's end
  std::int64_t length = 0;      // ns
  std::int64_t awake = 0;       // of which not asleep in park_worker
  std::uint32_t slices = 0;     // green threads run (started) in it
  std::uint32_t handovers = 0;  // its operations on channels last used on another worker
};

enum class move_verdict : std::uint8_t {
  asleep,   // it slept most of the period and ran nothing: its last verdict stands
  stay,     // short slices, or green threads that talk across cores: keep them here
  movable,  // other workers may take its green threads
};

// The mean slice is taken over the time awake: a worker that slept most of the period and then
// ran a spawning loop is judged by that loop's slices, not found movable for having slept (which
// let two workers take such a loop from each other, each movable in turn after a sleep). A slice
// that ran the whole period (stuck, or CPU-bound) is movable at once.
inline move_verdict judge_move(move_history& h, const move_period& p) noexcept {
  const std::int64_t awake = std::clamp(p.awake, std::int64_t{0}, p.length);
  if (p.slices == 0 && 2 * awake < p.length) return move_verdict::asleep;
  if (p.slices == 0) {
    h.gather_until = 0;  // one slice all period: nothing talks
  } else if (2 * static_cast<std::int64_t>(p.handovers) * handover_cost_ns >= p.length) {
    // Half the period or more spent handing channels over between cores: gather.
    if (p.now >= h.gather_until) {
      const bool again =
          h.gather_until != 0 &&
          p.now - h.gather_until < std::max(2 * h.gather_for, gather_again_within_ns);
      h.gather_for = again ? std::min(2 * h.gather_for, gather_max_ns) : gather_min_ns;
    }
    h.gather_until = p.now + h.gather_for;
  }
  const std::int64_t mean = p.slices == 0 ? p.length : awake / p.slices;
  return mean >= min_slice_worth_moving_ns && p.now >= h.gather_until ? move_verdict::movable
                                                                      : move_verdict::stay;
}

}  // namespace weft::detail
