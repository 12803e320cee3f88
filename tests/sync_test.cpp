// wait_group, mutex and condition_variable under contention from green and OS threads.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using weft_test::workers;

class sync : public workers {};
WEFT_WORKER_COUNTS(sync);

TEST_P(sync, mutex_is_exact_under_green_and_os_contention) {
  constexpr int green = 64, os = 4, iters = 2000;
  long counter = 0;  // plain: the mutex is the only protection
  weft::mutex m;
  weft::run(
      [&] {
        weft::wait_group wg;
        wg.add(green + os);
        for (int i = 0; i < green; ++i)
          weft::go([&] {
            for (int k = 0; k < iters; ++k) {
              std::lock_guard lk(m);
              ++counter;
              if (k % 64 == 0) weft::yield();  // hold it across a switch sometimes
            }
            wg.done();
          });
        std::vector<std::thread> threads;
        for (int i = 0; i < os; ++i)
          threads.emplace_back([&] {
            for (int k = 0; k < iters; ++k) {
              std::unique_lock lk(m);
              ++counter;
            }
            wg.done();
          });
        wg.wait();
        for (auto& t : threads) t.join();
      },
      cfg());
  EXPECT_EQ(counter, static_cast<long>(green + os) * iters);
}

TEST_P(sync, mutex_try_lock_and_misuse) {
  weft::run(
      [] {
        weft::mutex m;
        EXPECT_TRUE(m.try_lock());
        EXPECT_FALSE(m.try_lock());
        auto other = weft::spawn([&] { return m.try_lock(); });
        EXPECT_FALSE(other.join());
        m.unlock();
        EXPECT_THROW(m.unlock(), std::logic_error);
      },
      cfg());
}

TEST_P(sync, wait_group_exact_with_green_and_os_threads) {
  constexpr int rounds = 50, per = 40;
  weft::run(
      [&] {
        for (int r = 0; r < rounds; ++r) {
          weft::wait_group wg;
          std::atomic<int> done{0};
          wg.add(per + 2);
          for (int i = 0; i < per; ++i)
            weft::go([&] {
              weft::yield();
              done.fetch_add(1);
              wg.done();
            });
          std::thread t1([&] {
            done.fetch_add(1);
            wg.done();
          });
          std::thread t2([&] {
            done.fetch_add(1);
            wg.done();
          });
          // Waiters on both sides.
          std::thread os_waiter([&] {
            wg.wait();
            EXPECT_EQ(done.load(), per + 2);
          });
          auto green_waiter = weft::spawn([&] {
            wg.wait();
            return done.load();
          });
          wg.wait();
          EXPECT_EQ(done.load(), per + 2);
          EXPECT_EQ(green_waiter.join(), per + 2);
          t1.join();
          t2.join();
          os_waiter.join();
          EXPECT_EQ(wg.count(), 0);
        }
        weft::wait_group bad;
        EXPECT_THROW(bad.done(), std::logic_error);
        EXPECT_EQ(bad.count(), 0);
      },
      cfg());
}

TEST_P(sync, condition_variable_producer_consumer_is_exact) {
  constexpr int producers = 8, consumers = 8, per = 500;
  std::vector<int> seen(producers * per, 0);
  weft::run(
      [&] {
        weft::mutex m;
        weft::condition_variable not_empty;
        std::vector<int> queue;
        int finished_producers = 0;
        weft::wait_group wg;
        wg.add(producers + consumers);
        for (int p = 0; p < producers; ++p)
          weft::go([&, p] {
            for (int i = 0; i < per; ++i) {
              {
                std::lock_guard lk(m);
                queue.push_back(p * per + i);
              }
              not_empty.notify_one();
            }
            {
              std::lock_guard lk(m);
              ++finished_producers;
            }
            not_empty.notify_all();
            wg.done();
          });
        for (int c = 0; c < consumers; ++c)
          weft::go([&] {
            std::unique_lock lk(m);
            for (;;) {
              not_empty.wait(lk, [&] { return !queue.empty() || finished_producers == producers; });
              if (queue.empty()) break;
              int v = queue.back();
              queue.pop_back();
              ++seen[v];
            }
            lk.unlock();
            wg.done();
          });
        wg.wait();
      },
      cfg());
  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << "value " << i;
}

TEST_P(sync, condition_variable_timeouts) {
  weft::run(
      [] {
        weft::mutex m;
        weft::condition_variable cv;
        std::unique_lock lk(m);
        const auto t0 = std::chrono::steady_clock::now();
        // As with std, a wait may return spuriously (the chaos build makes some do).
        while (cv.wait_until(lk, t0 + 5ms) != std::cv_status::timeout) {
        }
        EXPECT_GE(std::chrono::steady_clock::now() - t0, 5ms);
        EXPECT_FALSE(cv.wait_for(lk, 1ms, [] { return false; }));
        bool flag = false;
        auto setter = weft::spawn([&] {
          weft::sleep_for(2ms);
          std::lock_guard g(m);
          flag = true;
          cv.notify_one();
        });
        EXPECT_TRUE(cv.wait_for(lk, 10s, [&] { return flag; }));
        lk.unlock();
        setter.join();
      },
      cfg());
}

TEST_P(sync, condition_variable_wakes_os_thread_waiters) {
  weft::run(
      [] {
        weft::mutex m;
        weft::condition_variable cv;
        int stage = 0;
        std::thread os([&] {
          std::unique_lock lk(m);
          cv.wait(lk, [&] { return stage == 1; });
          stage = 2;
          cv.notify_all();
        });
        {
          std::lock_guard lk(m);
          stage = 1;
        }
        cv.notify_all();
        std::unique_lock lk(m);
        cv.wait(lk, [&] { return stage == 2; });
        lk.unlock();
        os.join();
      },
      cfg());
}

TEST(sync_os_only, primitives_work_without_a_runtime) {
  weft::mutex m;
  weft::wait_group wg;
  long counter = 0;
  wg.add(4);
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      for (int k = 0; k < 10000; ++k) {
        std::lock_guard lk(m);
        ++counter;
      }
      wg.done();
    });
  wg.wait();
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 40000);
}

}  // namespace

namespace {

// The done() that releases a waiter must not touch the wait_group afterwards: the waiter may
// destroy it at once (ASan catches any use after free here).
TEST_P(sync, wait_group_may_be_destroyed_as_soon_as_wait_returns) {
  weft::run(
      [] {
        for (int round = 0; round < 2000; ++round) {
          auto wg = std::make_unique<weft::wait_group>();
          wg->add(2);
          weft::go([w = wg.get()] { w->done(); });
          if (round % 100 == 0) {
            std::thread([w = wg.get()] { w->done(); }).detach();
          } else {
            weft::go([w = wg.get()] { w->done(); });
          }
          wg->wait();
          wg.reset();
        }
      },
      cfg());
}

}  // namespace
