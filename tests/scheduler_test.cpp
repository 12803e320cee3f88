// Yield interleaving, work stealing, sleeps, shutdown with parked green threads.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using weft_test::workers;

class scheduler : public workers {};
WEFT_WORKER_COUNTS(scheduler);

TEST_P(scheduler, yields_interleave) {
  // Two green threads that yield after each step alternate strictly on one worker; on several
  // they may run in parallel. Every step happens exactly once either way.
  std::vector<int> order;
  std::mutex m;
  weft::run(
      [&] {
        weft::wait_group wg;
        wg.add(2);
        for (int id = 0; id < 2; ++id) {
          weft::go([&, id] {
            for (int i = 0; i < 100; ++i) {
              {
                std::lock_guard lk(m);
                order.push_back(id);
              }
              weft::yield();
            }
            wg.done();
          });
        }
        wg.wait();
      },
      cfg());
  ASSERT_EQ(order.size(), 200u);
  int switches = 0;
  for (std::size_t i = 1; i < order.size(); ++i) switches += order[i] != order[i - 1];
  if (GetParam() == 1 && !weft_test::chaos) {
    EXPECT_EQ(switches, 199);  // one worker: strict alternation
  }
  EXPECT_EQ(std::count(order.begin(), order.end(), 0), 100);
  EXPECT_EQ(std::count(order.begin(), order.end(), 1), 100);
}

TEST_P(scheduler, a_yielding_loop_lets_queued_green_threads_run) {
  // Each spinner waits for a flag that only a green thread queued after it sets: without yield
  // handing over the worker this would never end with one worker.
  weft::run(
      [] {
        constexpr int pairs = 32;
        std::vector<std::atomic<bool>> flags(pairs);
        std::vector<weft::join_handle<void>> hs;
        for (int i = 0; i < pairs; ++i) {
          hs.push_back(weft::spawn([&, i] {
            while (!flags[i].load()) weft::yield();
          }));
          hs.push_back(weft::spawn([&, i] { flags[i].store(true); }));
        }
        for (auto& h : hs) h.join();
      },
      cfg());
}

TEST_P(scheduler, queued_work_on_a_busy_worker_is_stolen) {
  if (GetParam() == 1) GTEST_SKIP() << "stealing needs two workers";
  // One green thread spawns 64 green threads (they queue on its worker) and then keeps the worker
  // busy without yielding until all of them have run: only other workers can run them.
  std::atomic<int> ran{0};
  weft::run(
      [&] {
        auto busy = weft::spawn([&] {
          for (int i = 0; i < 64; ++i) weft::go([&] { ran.fetch_add(1); });
          const auto give_up = std::chrono::steady_clock::now() + 20s;
          while (ran.load() < 64 && std::chrono::steady_clock::now() < give_up) {
          }
        });
        busy.join();
      },
      cfg());
  EXPECT_EQ(ran.load(), 64);
  EXPECT_GT(weft::stats().steals, 0u);
}

TEST_P(scheduler, sleeps_never_wake_early) {
  weft::run(
      [] {
        std::vector<weft::join_handle<void>> hs;
        for (int i = 0; i < 200; ++i) {
          hs.push_back(weft::spawn([i] {
            const auto d = std::chrono::microseconds(100 * (i % 20));
            const auto t0 = std::chrono::steady_clock::now();
            weft::sleep_for(d);
            EXPECT_GE(std::chrono::steady_clock::now() - t0, d);
            const auto until = std::chrono::steady_clock::now() + 300us;
            weft::sleep_until(until);
            EXPECT_GE(std::chrono::steady_clock::now(), until);
          }));
        }
        for (auto& h : hs) h.join();
        // system_clock deadlines work too
        const auto sys = std::chrono::system_clock::now() + 2ms;
        weft::sleep_until(sys);
        EXPECT_GE(std::chrono::system_clock::now(), sys);
      },
      cfg());
}

TEST_P(scheduler, sleeping_green_threads_hold_no_worker) {
  // 1000 green threads sleeping 50 ms at once all wake within a fraction of the 50 s they would
  // take one after another. Timed from when all are asleep: creating them is slow under TSan.
  constexpr int n = 1000;
  std::atomic<int> asleep{0};
  std::chrono::steady_clock::duration all_asleep_to_done{};
  weft::run(
      [&] {
        weft::wait_group wg;
        wg.add(n);
        for (int i = 0; i < n; ++i)
          weft::go([&] {
            ++asleep;
            weft::sleep_for(50ms);
            wg.done();
          });
        while (asleep.load() < n) weft::yield();
        const auto t0 = std::chrono::steady_clock::now();
        wg.wait();
        all_asleep_to_done = std::chrono::steady_clock::now() - t0;
      },
      cfg());
  EXPECT_LT(all_asleep_to_done, 5s);
}

struct counted {
  static inline std::atomic<int> alive{0};
  counted() { alive.fetch_add(1); }
  counted(const counted&) { alive.fetch_add(1); }
  ~counted() { alive.fetch_sub(1); }
};

TEST_P(scheduler, run_unwinds_parked_green_threads) {
  counted::alive = 0;
  std::atomic<int> unwound{0};
  std::atomic<int> started{0};
  weft::run(
      [&] {
        auto never = std::make_shared<weft::wait_group>(1);
        auto m = std::make_shared<weft::mutex>();
        m->lock();
        for (int i = 0; i < 100; ++i) {
          weft::go([&, never, c = counted{}] {
            struct on_exit {
              std::atomic<int>& n;
              ~on_exit() { n.fetch_add(1); }
            } guard{unwound};
            started.fetch_add(1);
            counted local;
            never->wait();  // never released
          });
          weft::go([&, m, c = counted{}] {
            struct on_exit {
              std::atomic<int>& n;
              ~on_exit() { n.fetch_add(1); }
            } guard{unwound};
            started.fetch_add(1);
            std::lock_guard lk(*m);  // never available
          });
          weft::go([&, c = counted{}] {
            struct on_exit {
              std::atomic<int>& n;
              ~on_exit() { n.fetch_add(1); }
            } guard{unwound};
            started.fetch_add(1);
            weft::sleep_for(1h);
          });
          weft::go([&, c = counted{}] {  // runnable, yields forever
            struct on_exit {
              std::atomic<int>& n;
              ~on_exit() { n.fetch_add(1); }
            } guard{unwound};
            started.fetch_add(1);
            for (;;) weft::yield();
          });
        }
        while (started.load() < 400) weft::sleep_for(1ms);
        // Spawned just before main returns: never started, still destroyed.
        for (int i = 0; i < 100; ++i) weft::go([c = counted{}] {});
      },
      cfg());
  EXPECT_EQ(unwound.load(), 400);
  EXPECT_EQ(counted::alive.load(), 0);
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

TEST_P(scheduler, many_runs_in_one_process) {
  for (int r = 0; r < 20; ++r) {
    std::atomic<int> n{0};
    weft::run(
        [&] {
          weft::wait_group wg;
          wg.add(50);
          for (int i = 0; i < 50; ++i)
            weft::go([&] {
              weft::yield();
              n.fetch_add(1);
              wg.done();
            });
          wg.wait();
        },
        cfg());
    ASSERT_EQ(n.load(), 50);
  }
}

TEST_P(scheduler, green_thread_ids_are_unique) {
  weft::run(
      [] {
        EXPECT_TRUE(weft::in_green_thread());
        std::vector<weft::join_handle<std::uint64_t>> hs;
        for (int i = 0; i < 1000; ++i)
          hs.push_back(weft::spawn([] { return weft::this_green_thread_id(); }));
        std::vector<std::uint64_t> ids;
        for (auto& h : hs) ids.push_back(h.join());
        std::sort(ids.begin(), ids.end());
        EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
        EXPECT_NE(ids.front(), 0u);
      },
      cfg());
  EXPECT_FALSE(weft::in_green_thread());
  EXPECT_EQ(weft::this_green_thread_id(), 0u);
}

TEST_P(scheduler, custom_stack_size_allows_deep_recursion) {
  weft::run(
      [] {
        auto deep = weft::spawn(weft::spawn_options{.stack_size = 16 << 20}, [] {
          std::function<int(int)> rec = [&](int n) {
            volatile char pad[1024];
            pad[0] = static_cast<char>(n);
            return n == 0 ? pad[0] : rec(n - 1) + 1;
          };
          return rec(5000);  // ~5 MB of frames: far beyond the default stack
        });
        EXPECT_EQ(deep.join(), 5000);
      },
      cfg());
}

}  // namespace

namespace {

TEST(scheduler_config, workers_come_from_config_then_env_then_hardware) {
  weft::config cfg;  // workers = 0
  ::setenv("WEFT_WORKERS", "3", 1);
  weft::run([] { EXPECT_EQ(weft::stats().workers, 3u); }, cfg);
  cfg.workers = 2;  // an explicit count wins over the environment
  weft::run([] { EXPECT_EQ(weft::stats().workers, 2u); }, cfg);
  ::unsetenv("WEFT_WORKERS");
  cfg.workers = 0;
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  weft::run([hw] { EXPECT_EQ(weft::stats().workers, hw); }, cfg);
}

}  // namespace
