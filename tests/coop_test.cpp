// The cooperative budget: a green thread whose operations never block yields every coop_budget
// operations; unconstrained lifts that; consume_budget gives CPU loops the same; a green thread
// spinning without weft calls cannot keep its worker's queue from the other workers.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using weft_test::workers;

class coop : public workers {};
WEFT_WORKER_COUNTS(coop);

// A greedy green thread sends and receives on its own buffered channel (never blocking) until a
// green thread it spawned has run. Returns how many operations it completed before that.
long greedy_ops_before_other_runs(weft::config c, long cap, bool use_unconstrained) {
  long ops = 0;
  weft::run(
      [&] {
        auto greedy = weft::spawn([&] {
          std::atomic<bool> other_ran{false};
          weft::chan<int> ch(4);
          auto spawn_and_loop = [&] {
            weft::go([&] { other_ran = true; });  // queued on this worker, runs next
            while (!other_ran.load() && ops < cap) {
              ch.send(1);
              ch.recv();
              ops += 2;
            }
          };
          // The spawn is a budget point too: inside the scope, so that a preempt flag the
          // monitor raised as this slice began cannot cut it there.
          if (use_unconstrained) {
            weft::unconstrained scope;
            spawn_and_loop();
          } else {
            spawn_and_loop();
          }
          while (!other_ran.load()) weft::yield();
        });
        greedy.join();
      },
      c);
  return ops;
}

TEST(coop_budget, greedy_green_thread_yields_within_its_budget) {
  weft::config c;
  c.workers = 1;  // the other green thread can only run on the greedy one's worker
  for (std::uint32_t budget : {16u, 128u}) {
    c.coop_budget = budget;
    // One unit went to the spawn; every operation after that spends one. The monitor may cut
    // the slice sooner if the OS preempts the worker for a whole monitor period (a loaded test
    // machine), so the lower bound gets a few attempts; the upper bound holds on every one.
    long ops = 0;
    for (int attempt = 0; attempt < 5; ++attempt) {
      ops = greedy_ops_before_other_runs(c, 1'000'000, false);
      // The other runs at the first forced yield only where it was queued on this worker, which
      // the chaos schedule may not do (it places it on the global queue at random).
      if (!weft_test::chaos) {
        EXPECT_LE(ops, static_cast<long>(budget)) << "budget " << budget;
      }
      EXPECT_GE(weft::stats().forced_yields, 1u);
      if (ops >= static_cast<long>(budget) - 2) break;
    }
    EXPECT_GE(ops, static_cast<long>(budget) - 2) << "budget " << budget;
  }
}

TEST(coop_budget, without_a_budget_the_greedy_one_runs_to_its_end) {
  weft::config c;
  c.workers = 1;
  c.coop_budget = 0;
  EXPECT_EQ(greedy_ops_before_other_runs(c, 20'000, false), 20'000);
}

TEST(coop_budget, unconstrained_scope_spends_nothing) {
  weft::config c;
  c.workers = 1;
  EXPECT_EQ(greedy_ops_before_other_runs(c, 20'000, true), 20'000);
}

// A green thread whose budget points are far apart in time (heavy work between them) is cut by
// the monitor's preempt flag long before its budget runs out: another green thread on its worker
// runs within a few monitor periods, not after a million heavy iterations.
TEST(coop_budget, monitor_preempts_a_slice_of_heavy_budget_points) {
  weft::config c;
  c.workers = 1;
  c.coop_budget = 1'000'000;
  constexpr long cap = 200'000;  // ~20 µs each: seconds of work if nothing cut the slice
  long iterations = 0;
  weft::run(
      [&] {
        std::atomic<bool> other_ran{false};
        auto heavy = weft::spawn([&] {
          weft::go([&] { other_ran = true; });  // queued on this worker, behind the loop
          while (!other_ran.load() && iterations < cap) {
            const auto until = std::chrono::steady_clock::now() + 20us;
            while (std::chrono::steady_clock::now() < until) {
            }
            ++iterations;
            weft::consume_budget();
          }
        });
        heavy.join();
        EXPECT_TRUE(other_ran.load());
      },
      c);
  EXPECT_LT(iterations, cap);
  EXPECT_GE(weft::stats().forced_yields, 1u);
}

TEST_P(coop, consume_budget_lets_a_cpu_loop_share_its_worker) {
  // Several CPU loops that call only consume_budget, and one green thread that needs a turn on
  // every worker's queue: all finish, and every loop was cut by the budget.
  auto c = cfg();
  c.coop_budget = 64;
  std::atomic<int> turns{0};
  weft::run(
      [&] {
        weft::wait_group wg;
        std::atomic<bool> stop{false};
        const int loops = static_cast<int>(GetParam()) + 1;
        wg.add(loops);
        for (int i = 0; i < loops; ++i)
          weft::go([&] {
            volatile std::uint64_t x = 0;
            while (!stop.load()) {
              x = x + 1;
              weft::consume_budget();
            }
            wg.done();
          });
        for (int i = 0; i < 1000; ++i) {
          weft::yield();
          ++turns;
        }
        stop = true;
        wg.wait();
      },
      c);
  EXPECT_EQ(turns.load(), 1000);
  EXPECT_GT(weft::stats().forced_yields, 0u);
}

TEST_P(coop, cpu_spinner_does_not_starve_the_green_threads_queued_behind_it) {
  if (GetParam() == 1) GTEST_SKIP() << "one worker: nobody else can run them (cooperative)";
  constexpr int queued = 200;
  std::atomic<int> done{0};
  bool all_done_while_spinning = false;
  weft::run(
      [&] {
        auto spinner = weft::spawn([&] {
          // Queue work on this worker, then hold it in a loop that never calls into weft.
          {
            weft::unconstrained no_yield;  // spawning would otherwise yield every 128
            for (int i = 0; i < queued; ++i) weft::go([&] { ++done; });
          }
          const auto give_up = std::chrono::steady_clock::now() + 20s;
          while (done.load() < queued && std::chrono::steady_clock::now() < give_up) {
          }
          return done.load() == queued;
        });
        all_done_while_spinning = spinner.join();
      },
      cfg());
  EXPECT_TRUE(all_done_while_spinning);
  EXPECT_EQ(done.load(), queued);
}

// A worker whose green threads run only tiny slices keeps its queue private (no atomics, no
// thieves). When one of them then spins without scheduling, the monitor must open that queue, or
// what is queued behind the spinner would wait for it.
TEST_P(coop, a_stuck_worker_gives_up_its_private_queue) {
  if (GetParam() == 1) GTEST_SKIP() << "one worker: nobody else can run them (cooperative)";
  constexpr int queued = 200;
  // Under load the OS may deschedule the churning worker, which then looks to the monitor as if
  // it ran long slices, and its queue stays shared (thieves take the work the usual way): try
  // again until a private queue was opened (a third of tries under the heaviest tests here).
  std::uint64_t opened = 0;
  for (int attempt = 0; attempt < (weft_test::sanitized ? 1 : 20) && opened == 0; ++attempt) {
    std::atomic<int> done{0};
    bool all_done_while_spinning = false;
    weft::run(
        [&] {
          auto spinner = weft::spawn([&] {
            // Tiny slices for long enough that the monitor judges this worker's queue not
            // worth moving: it goes private.
            const auto churn_until = std::chrono::steady_clock::now() + 30ms;
            while (std::chrono::steady_clock::now() < churn_until) {
              weft::go([] {});
              weft::yield();
            }
            {
              weft::unconstrained no_yield;
              for (int i = 0; i < queued; ++i) weft::go([&] { ++done; });
            }
            const auto give_up = std::chrono::steady_clock::now() + 20s;
            while (done.load() < queued && std::chrono::steady_clock::now() < give_up) {
            }
            return done.load() == queued;
          });
          all_done_while_spinning = spinner.join();
          opened = weft::stats().private_queues_opened;
        },
        cfg());
    EXPECT_TRUE(all_done_while_spinning);
    EXPECT_EQ(done.load(), queued);
  }
  // TSan cannot model the membarrier that private queues rely on: they stay shared there. The
  // ASan build is a debug build whose slices average over the 1 µs below which queues go private.
  if (!weft_test::sanitized) {
    EXPECT_GE(opened, 1u);
  }
}

// Every worker is held by a green thread that never returns to the scheduler until a green
// thread queued behind them runs: only a spare worker (started by the monitor) can run it.
TEST_P(coop, spare_worker_runs_what_stuck_workers_hold) {
  if (GetParam() == 1) GTEST_SKIP() << "single-threaded mode has no spare workers";
  const int n = static_cast<int>(GetParam());
  std::atomic<int> spinning{0};
  std::atomic<bool> released{false};
  std::atomic<int> released_in_time{0};
  unsigned spares_seen = 0;
  weft::run(
      [&] {
        weft::wait_group wg;
        wg.add(n + 1);
        for (int i = 0; i < n; ++i)
          weft::go([&] {
            ++spinning;
            const auto give_up = std::chrono::steady_clock::now() + 20s;
            while (!released.load() && std::chrono::steady_clock::now() < give_up) {
            }
            if (released.load()) ++released_in_time;
            wg.done();
          });
        weft::go([&] {
          while (spinning.load() < n) weft::yield();  // until every worker is held
          spares_seen = weft::stats().spare_workers;
          released = true;
          wg.done();
        });
        wg.wait();
      },
      cfg());
  EXPECT_EQ(released_in_time.load(), n);
  EXPECT_GE(spares_seen, 1u);
  EXPECT_EQ(weft::stats().spare_workers, 0u);
}

TEST_P(coop, spare_worker_runs_past_workers_blocked_in_system_calls) {
  if (GetParam() == 1) GTEST_SKIP() << "single-threaded mode has no spare workers";
  const int n = static_cast<int>(GetParam());
  weft_test::worker_blockers blockers(n);
  weft::run(
      [&] {
        weft::wait_group wg;
        wg.add(n + 1);
        blockers.spawn(wg);
        weft::go([&] {
          while (!blockers.all_blocking()) weft::yield();
          weft::sleep_for(5ms);  // they are inside read(2) by now
          blockers.release();
          wg.done();
        });
        wg.wait();
      },
      cfg());
  EXPECT_EQ(blockers.released(), n);
}

// This process's thread called `name` (its /proc comm), or 0.
pid_t thread_named(const std::string& name) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string s;
    std::getline(comm, s);
    if (s == name) return static_cast<pid_t>(std::stol(entry.path().filename().string()));
  }
  return 0;
}

// How many times thread `tid` has gone to sleep (the monitor: once per look).
long voluntary_switches(pid_t tid) {
  std::ifstream status("/proc/self/task/" + std::to_string(tid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stol(line.substr(24));
  return -1;
}

TEST_P(coop, weft_names_the_threads_it_starts) {
  std::string caller_before, caller_inside;
  std::getline(std::ifstream("/proc/thread-self/comm"), caller_before);
  bool monitor = false;
  std::vector<bool> worker_found(GetParam(), false);
  weft::run(
      [&] {
        monitor = thread_named("weft-monitor") != 0;
        for (unsigned i = 1; i < GetParam(); ++i)
          worker_found[i] = thread_named("weft-worker-" + std::to_string(i)) != 0;
        weft::blocking([&] { return thread_named("weft-blocking"); });
        EXPECT_NE(thread_named("weft-blocking"), 0);
      },
      cfg());
  std::getline(std::ifstream("/proc/thread-self/comm"), caller_inside);
  EXPECT_TRUE(monitor);
  for (unsigned i = 1; i < GetParam(); ++i) EXPECT_TRUE(worker_found[i]) << "weft-worker-" << i;
  EXPECT_EQ(caller_inside, caller_before);  // run()'s caller is worker 0 and keeps its name
}

// Green threads that only compute and yield need nothing of the monitor at its busy pace (no
// I/O, no timer, nobody stuck or idle): it backs off, instead of preempting a worker every
// 200 us for a look.
TEST_P(coop, the_monitor_backs_off_while_busy_workers_need_nothing_of_it) {
  if (GetParam() > std::thread::hardware_concurrency())
    GTEST_SKIP() << "more workers than cores: one the OS leaves off a core for 10 ms looks "
                    "stuck, and the monitor keeps its busy pace";
  long looks = -1;
  double busy_pace_looks = 0;
  weft::run(
      [&] {
        const pid_t monitor = thread_named("weft-monitor");
        ASSERT_NE(monitor, 0);
        auto compute_then_yield = [] {
          const auto until = std::chrono::steady_clock::now() + 20us;
          while (std::chrono::steady_clock::now() < until) {
          }
          weft::yield();
        };
        std::atomic<bool> stop{false};
        weft::wait_group wg;
        const int n = 2 * static_cast<int>(GetParam());
        wg.add(n);
        for (int i = 0; i < n; ++i)
          weft::go([&] {
            while (!stop.load()) compute_then_yield();
            wg.done();
          });
        // No sleep here: a pending timer is a reason for the busy pace.
        auto t0 = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() < t0 + 50ms) compute_then_yield();
        const long before = voluntary_switches(monitor);
        t0 = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() < t0 + 400ms) compute_then_yield();
        looks = voluntary_switches(monitor) - before;
        busy_pace_looks =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0) / 200us;
        stop = true;
        wg.wait();
      },
      cfg());
  // Backed off to 1.6 ms: about 1/8 of the busy pace.
  EXPECT_GE(looks, 0);
  EXPECT_LT(static_cast<double>(looks), busy_pace_looks / 2)
      << looks << " looks in " << busy_pace_looks * 0.2 << " ms";
}

}  // namespace
