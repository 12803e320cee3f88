// weft::after and weft::ticker: fire no earlier than asked, compose with select, stop, drop
// ticks for a slow receiver, work from OS threads, leave nothing behind when run ends.
#include <thread>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

class timer_test : public weft_test::workers {};
WEFT_WORKER_COUNTS(timer_test);

TEST_P(timer_test, after_sends_the_time_once_no_earlier_than_asked) {
  weft::run(
      [] {
        const auto start = steady::now();
        auto ch = weft::after(30ms);
        std::optional<steady::time_point> fired = ch.recv();
        ASSERT_TRUE(fired.has_value());
        EXPECT_GE(*fired - start, 30ms);
        EXPECT_GE(steady::now() - start, 30ms);
        EXPECT_FALSE(ch.try_recv().has_value());  // once only
        // Many at once, all delivered.
        std::vector<weft::chan<steady::time_point>> many;
        for (int i = 0; i < 1000; ++i)
          many.push_back(weft::after(std::chrono::microseconds(i * 10)));
        int got = 0;
        for (auto& c : many) got += c.recv().has_value();
        EXPECT_EQ(got, 1000);
      },
      cfg());
}

TEST_P(timer_test, after_composes_with_select) {
  weft::run(
      [] {
        weft::chan<int> never;
        auto timeout = weft::after(20ms);
        bool timed_out = false;
        const std::size_t i = weft::select(
            weft::on_recv(never, [](std::optional<int>) {}),
            weft::on_recv(timeout,
                          [&](std::optional<steady::time_point> t) { timed_out = t.has_value(); }));
        EXPECT_EQ(i, 1u);
        EXPECT_TRUE(timed_out);
      },
      cfg());
}

TEST_P(timer_test, ticker_ticks_until_stopped) {
  weft::run(
      [] {
        weft::ticker t(5ms);
        auto ch = t.channel();
        steady::time_point last{};
        for (int i = 0; i < 10; ++i) {
          auto tick = ch.recv();
          ASSERT_TRUE(tick.has_value());
          EXPECT_GT(*tick, last);
          last = *tick;
        }
        t.stop();
        weft::sleep_for(2ms);
        while (ch.try_recv()) {
        }  // a tick that was already being sent as stop() ran
        weft::sleep_for(30ms);
        EXPECT_FALSE(ch.try_recv().has_value());
      },
      cfg());
}

TEST_P(timer_test, a_slow_receiver_gets_no_backlog) {
  if (weft_test::chaos) GTEST_SKIP() << "counts ticks that the chaos schedule delays at random";
  weft::run(
      [] {
        weft::ticker t(2ms);
        // Until several ticks found the buffer full: on a loaded machine the timer may fire
        // fewer than 20 times in 40 ms, and the count, not the time, is what this is about.
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        while (t.dropped() < 5 && std::chrono::steady_clock::now() < give_up) weft::sleep_for(10ms);
        EXPECT_EQ(t.channel().size(), 1u);  // one tick held, the rest dropped
        EXPECT_GE(t.dropped(), 5u);
        t.reset(1h);
        t.channel().try_recv();
        weft::sleep_for(10ms);
        EXPECT_FALSE(t.channel().try_recv().has_value());
        EXPECT_THROW(t.reset(0ms), std::invalid_argument);
      },
      cfg());
}

TEST_P(timer_test, timers_work_from_os_threads_and_are_released_when_run_ends) {
  weft::run(
      [] {
        weft::chan<steady::time_point> from_os;
        std::thread os([&] { from_os = weft::after(10ms); });
        os.join();
        EXPECT_TRUE(from_os.recv().has_value());
        // Left pending: discarded when run ends (LSan checks nothing leaks).
        weft::after(1h);
        weft::go([] {
          weft::ticker t(1ms);
          weft::chan<int> never;
          never.recv();  // parked when run ends: unwound, and the ticker with it
        });
        weft::sleep_for(5ms);
      },
      cfg());
  EXPECT_THROW(weft::after(1ms), std::logic_error);
}

}  // namespace
