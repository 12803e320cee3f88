// weft::blocking: values and exceptions come back, only the caller waits, the pool stays bounded,
// and weft::run ending waits for calls in flight.
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using weft_test::workers;

class blocking : public workers {};
WEFT_WORKER_COUNTS(blocking);

TEST_P(blocking, returns_values_references_and_exceptions) {
  weft::run(
      [&] {
        EXPECT_EQ(weft::blocking([] { return 42; }), 42);
        EXPECT_EQ(weft::blocking([] { return std::string(1000, 'x'); }), std::string(1000, 'x'));
        auto p = weft::blocking([] { return std::make_unique<int>(7); });  // move-only
        ASSERT_TRUE(p);
        EXPECT_EQ(*p, 7);
        int target = 1;
        int& ref = weft::blocking([&]() -> int& { return target; });
        EXPECT_EQ(&ref, &target);
        bool ran = false;
        weft::blocking([&] { ran = true; });
        EXPECT_TRUE(ran);
        EXPECT_THROW(weft::blocking([]() -> int { throw std::out_of_range("deliberate"); }),
                     std::out_of_range);
        try {
          weft::blocking([] { throw std::runtime_error("from the pool"); });
          ADD_FAILURE() << "no exception";
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "from the pool");
        }
      },
      cfg());
}

TEST_P(blocking, runs_on_another_os_thread_and_parks_only_the_caller) {
  // The call waits for a flag that only another green thread sets: if the call held its worker
  // (with one worker, the only one) the flag would never be set and the call would time out.
  std::atomic<bool> flag{false};
  bool saw_flag = false;
  std::thread::id pool_thread;
  weft::run(
      [&] {
        weft::wait_group wg;
        wg.add(1);
        weft::go([&] {
          saw_flag = weft::blocking([&] {
            pool_thread = std::this_thread::get_id();
            const auto give_up = std::chrono::steady_clock::now() + 20s;
            while (!flag.load() && std::chrono::steady_clock::now() < give_up)
              std::this_thread::sleep_for(1ms);
            return flag.load();
          });
          wg.done();
        });
        weft::sleep_for(20ms);
        flag = true;
        wg.wait();
      },
      cfg());
  EXPECT_TRUE(saw_flag);
  EXPECT_NE(pool_thread, std::this_thread::get_id());
}

TEST_P(blocking, pool_stays_bounded_and_queues_the_rest) {
  constexpr int calls = 64;
  constexpr unsigned bound = 4;
  auto c = cfg();
  c.max_blocking_threads = bound;
  std::atomic<unsigned> active{0}, max_active{0};
  std::atomic<int> completed{0};
  unsigned threads_seen = 0;
  weft::run(
      [&] {
        weft::wait_group wg;
        wg.add(calls);
        for (int i = 0; i < calls; ++i)
          weft::go([&] {
            weft::blocking([&] {
              const unsigned now = ++active;
              unsigned seen = max_active.load();
              while (now > seen && !max_active.compare_exchange_weak(seen, now)) {
              }
              // Hold the thread until the pool is full (or long enough to tell it never fills).
              const auto give_up = std::chrono::steady_clock::now() + 10s;
              while (max_active.load() < bound && std::chrono::steady_clock::now() < give_up)
                std::this_thread::sleep_for(100us);
              --active;
            });
            ++completed;
            wg.done();
          });
        wg.wait();
        threads_seen = weft::stats().blocking_threads;
      },
      c);
  EXPECT_EQ(completed.load(), calls);
  EXPECT_EQ(max_active.load(), bound);
  EXPECT_LE(threads_seen, bound);
  EXPECT_GE(threads_seen, 1u);
}

TEST(blocking_os_thread, runs_inline_outside_a_runtime) {
  const auto self = std::this_thread::get_id();
  EXPECT_EQ(weft::blocking([&] { return std::this_thread::get_id(); }), self);
  EXPECT_THROW(weft::blocking([] { throw std::logic_error("x"); }), std::logic_error);
}

TEST_P(blocking, run_ending_waits_for_a_call_in_flight_then_unwinds_its_caller) {
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  std::atomic<bool> unwound{false};
  struct on_unwind {
    std::atomic<bool>* flag;
    ~on_unwind() { *flag = true; }
  };
  weft::run(
      [&] {
        weft::go([&] {
          on_unwind guard{&unwound};
          int local = 0;  // the call writes here after weft::run's main has returned
          weft::blocking([&] {
            started = true;
            std::this_thread::sleep_for(200ms);
            local = 1;
            finished = true;
          });
          ADD_FAILURE() << "the caller should have been unwound, not resumed";
          (void)local;
        });
        while (!started) weft::sleep_for(1ms);
      },
      cfg());
  EXPECT_TRUE(finished.load());
  EXPECT_TRUE(unwound.load());
}

}  // namespace
