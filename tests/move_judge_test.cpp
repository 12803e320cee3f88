// The monitor's judgement of whether a worker's green threads are worth moving to another core
// (runtime/move_judge.hpp), driven through periods of the test's own: the mean slice is taken
// over the time the worker was awake, a worker that slept keeps its verdict, and green threads
// that keep talking across cores after each gathering stay gathered for longer each time.
#include <gtest/gtest.h>

#include "runtime/move_judge.hpp"

namespace {

using weft::detail::gather_again_within_ns;
using weft::detail::gather_max_ns;
using weft::detail::gather_min_ns;
using weft::detail::judge_move;
using weft::detail::move_history;
using weft::detail::move_period;
using weft::detail::move_verdict;

constexpr std::int64_t us = 1'000, ms = 1'000'000;

move_period period(std::int64_t now, std::int64_t length, std::int64_t awake, std::uint32_t slices,
                   std::uint32_t handovers = 0) {
  move_period p;
  p.now = now;
  p.length = length;
  p.awake = awake;
  p.slices = slices;
  p.handovers = handovers;
  return p;
}

TEST(move_judge, short_slices_after_a_sleep_are_judged_by_the_time_awake) {
  move_history h;
  // Asleep for 1.5 ms of 1.6, then 500 slices of 200 ns: a spawning loop. Over the whole period
  // they would average 3.2 us, which is worth moving; over the time awake, 200 ns, which is not.
  EXPECT_EQ(judge_move(h, period(100 * ms, 1600 * us, 100 * us, 500)), move_verdict::stay);
  // The same slices over a period spent awake: the same verdict.
  EXPECT_EQ(judge_move(h, period(102 * ms, 1600 * us, 1600 * us, 8000)), move_verdict::stay);
  // Slices of 20 us are worth moving, however long the worker slept before them.
  EXPECT_EQ(judge_move(h, period(104 * ms, 1600 * us, 200 * us, 10)), move_verdict::movable);
}

TEST(move_judge, a_worker_that_slept_and_ran_nothing_keeps_its_verdict) {
  move_history h;
  ASSERT_EQ(judge_move(h, period(10 * ms, 200 * us, 200 * us, 1000, 100)), move_verdict::stay);
  const std::int64_t gathered_until = h.gather_until;
  ASSERT_EQ(gathered_until, 10 * ms + gather_min_ns);
  // Asleep all period, or nearly: nothing to judge, and the gathering is not forgotten.
  EXPECT_EQ(judge_move(h, period(12 * ms, 2 * ms, 0, 0)), move_verdict::asleep);
  EXPECT_EQ(judge_move(h, period(14 * ms, 2 * ms, 900 * us, 0)), move_verdict::asleep);
  EXPECT_EQ(h.gather_until, gathered_until);
}

TEST(move_judge, one_slice_all_period_is_movable_at_once) {
  move_history h;
  ASSERT_EQ(judge_move(h, period(10 * ms, 200 * us, 200 * us, 1000, 100)), move_verdict::stay);
  // Stuck in one green thread (or CPU-bound) for the whole period: its queue must be movable,
  // gathered or not.
  EXPECT_EQ(judge_move(h, period(11 * ms, 1 * ms, 1 * ms, 0)), move_verdict::movable);
  EXPECT_EQ(h.gather_until, 0);
}

TEST(move_judge, talk_across_cores_gathers_for_longer_each_time_spreading_fails) {
  move_history h;
  // Rounds 15 ms apart: each spreads while it spawns (long slices, no talk) and then talks
  // across cores. Each gathering ends before the next round talks, within the window that
  // says the spreading failed, so each lasts twice the last, up to the maximum.
  std::int64_t now = 0, expected = gather_min_ns;
  for (int round = 0; round < 12; ++round) {
    now += 15 * ms;
    if (now >= h.gather_until) {
      EXPECT_EQ(judge_move(h, period(now - 5 * ms, 1 * ms, 1 * ms, 100)), move_verdict::movable)
          << "round " << round;
    }
    // 1,000 hand-overs in 1 ms: twice the period at 2 us each.
    EXPECT_EQ(judge_move(h, period(now, 1 * ms, 1 * ms, 4000, 1000)), move_verdict::stay);
    EXPECT_EQ(h.gather_for, expected) << "round " << round;
    EXPECT_EQ(h.gather_until, now + expected);
    // The next round talks 15 ms later: if still gathered, the gathering is only extended.
    if (now + 15 * ms >= h.gather_until) expected = std::min(2 * expected, gather_max_ns);
  }
  // Once a gathering outlasts the gap between two rounds, talk extends it: it never ends while
  // the rounds go on.
  EXPECT_EQ(h.gather_for, 2 * gather_min_ns);
  // Talk that comes back each time just after the gathering ended doubles it up to the maximum.
  for (int i = 0; i < 10; ++i) {
    now = h.gather_until + 1 * ms;
    EXPECT_EQ(judge_move(h, period(now, 1 * ms, 1 * ms, 4000, 1000)), move_verdict::stay);
  }
  EXPECT_EQ(h.gather_for, gather_max_ns);
  // Quiet for long after the last gathering: the next talk starts over from the minimum.
  now = h.gather_until + gather_max_ns * 2 + gather_again_within_ns;
  EXPECT_EQ(judge_move(h, period(now, 1 * ms, 1 * ms, 4000, 1000)), move_verdict::stay);
  EXPECT_EQ(h.gather_for, gather_min_ns);
}

TEST(move_judge, a_racy_account_of_sleep_stays_within_the_period) {
  move_history h;
  // The monitor reads a worker's sleep without a lock: an account that comes out longer than
  // the period, or negative, is clamped, never a division by zero or a negative mean.
  EXPECT_EQ(judge_move(h, period(10 * ms, 1 * ms, -5 * ms, 0)), move_verdict::asleep);
  EXPECT_EQ(judge_move(h, period(11 * ms, 1 * ms, -5 * ms, 3)), move_verdict::stay);
  EXPECT_EQ(judge_move(h, period(12 * ms, 1 * ms, 9 * ms, 3)), move_verdict::movable);
}

}  // namespace
