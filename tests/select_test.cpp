// weft::select: readiness, blocking, fairness, close, timeouts, duplicates, OS threads.
#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;

class select_test : public weft_test::workers {};
WEFT_WORKER_COUNTS(select_test);

TEST_P(select_test, picks_the_ready_case_and_runs_only_its_callback) {
  weft::run(
      [] {
        weft::chan<int> a(1), b(1);
        b.send(7);
        int got = 0, ran = 0;
        const std::size_t i = weft::select(weft::on_recv(a, [&](std::optional<int>) { ++ran; }),
                                           weft::on_recv(b, [&](std::optional<int> v) {
                                             got = *v;
                                             ++ran;
                                           }));
        EXPECT_EQ(i, 1u);
        EXPECT_EQ(got, 7);
        EXPECT_EQ(ran, 1);
        // Send case into free buffer space.
        bool sent = false;
        EXPECT_EQ(weft::select(weft::on_send(a, 3, [&] { sent = true; }), weft::on_default([] {})),
                  0u);
        EXPECT_TRUE(sent);
        EXPECT_EQ(a.recv(), 3);
        // Nothing ready: default.
        EXPECT_EQ(
            weft::select(weft::on_recv(a, [](std::optional<int>) {}), weft::on_default([] {})), 1u);
      },
      cfg());
}

TEST_P(select_test, chooses_uniformly_among_ready_cases) {
  weft::run(
      [] {
        constexpr int n = 20000;
        weft::chan<int> a(n), b(n), c(n);
        for (int i = 0; i < n; ++i) {
          a.send(i);
          b.send(i);
          c.send(i);
        }
        int count[3] = {0, 0, 0};
        for (int i = 0; i < n; ++i) {
          count[weft::select(weft::on_recv(a, [](std::optional<int>) {}),
                             weft::on_recv(b, [](std::optional<int>) {}),
                             weft::on_recv(c, [](std::optional<int>) {}))]++;
        }
        // Binomial(n, 1/3): sigma ~ 67; allow 6 sigma.
        for (int k = 0; k < 3; ++k) EXPECT_NEAR(count[k], n / 3.0, 400) << "case " << k;
      },
      cfg());
}

TEST_P(select_test, blocks_until_a_sender_arrives_and_delivers_exactly_once) {
  constexpr int per = 3000, senders = 4;
  std::vector<std::atomic<int>> seen(per * senders);
  weft::run(
      [&] {
        std::vector<weft::chan<int>> chans;
        for (int s = 0; s < senders; ++s) chans.emplace_back(s % 2 ? 0 : 16);
        for (int s = 0; s < senders; ++s) {
          weft::go([&, s] {
            for (int i = 0; i < per; ++i) chans[s].send(s * per + i);
          });
        }
        auto on = [&](std::optional<int> v) { seen[*v].fetch_add(1); };
        for (int i = 0; i < per * senders; ++i) {
          weft::select(weft::on_recv(chans[0], on), weft::on_recv(chans[1], on),
                       weft::on_recv(chans[2], on), weft::on_recv(chans[3], on));
        }
      },
      cfg());
  for (auto& s : seen) ASSERT_EQ(s.load(), 1);
}

TEST_P(select_test, close_wakes_a_blocked_select) {
  weft::run(
      [] {
        weft::chan<int> a(0), b(0);
        auto h = weft::spawn([a, b] {
          bool closed = false;
          const std::size_t i =
              weft::select(weft::on_recv(a, [&](std::optional<int> v) { closed = !v; }),
                           weft::on_recv(b, [](std::optional<int>) {}));
          return i == 0 && closed;
        });
        weft::sleep_for(2ms);
        a.close();
        EXPECT_TRUE(h.join());
        // A send case on a closed channel throws.
        EXPECT_THROW(weft::select(weft::on_send(a, 1, [] {})), weft::channel_closed);
      },
      cfg());
}

TEST_P(select_test, close_racing_with_selects_loses_nothing) {
  // Senders select over two channels until a closed one throws; receivers select until both
  // are closed. Whatever a sender counted as sent was received exactly once.
  for (int round = 0; round < 10; ++round) {
    std::atomic<long> sent{0}, received{0};
    weft::run(
        [&] {
          weft::chan<long> a(round % 2 ? 4 : 0), b(0);
          weft::wait_group wg;
          wg.add(6);
          for (int s = 0; s < 3; ++s) {
            weft::go([&, s] {
              try {
                for (long i = 1;; ++i) {
                  const long v = i * 4 + s;
                  weft::select(weft::on_send(a, v, [&] { sent += v; }),
                               weft::on_send(b, v, [&] { sent += v; }));
                }
              } catch (const weft::channel_closed&) {
              }
              wg.done();
            });
          }
          for (int r = 0; r < 3; ++r) {
            weft::go([&] {
              bool a_open = true, b_open = true;
              while (a_open || b_open) {
                weft::select(weft::on_recv(a,
                                           [&](std::optional<long> v) {
                                             if (v) {
                                               received += *v;
                                             } else {
                                               a_open = false;
                                             }
                                           }),
                             weft::on_recv(b, [&](std::optional<long> v) {
                               if (v) {
                                 received += *v;
                               } else {
                                 b_open = false;
                               }
                             }));
              }
              wg.done();
            });
          }
          weft::sleep_for(1ms);
          a.close();
          b.close();
          wg.wait();
        },
        cfg());
    ASSERT_EQ(sent.load(), received.load()) << "round " << round;
  }
}

TEST_P(select_test, timeout_fires_when_nothing_is_ready) {
  weft::run(
      [] {
        weft::chan<int> never(0);
        const auto t0 = std::chrono::steady_clock::now();
        bool timed_out = false;
        const std::size_t i = weft::select(weft::on_recv(never, [](std::optional<int>) {}),
                                           weft::on_timeout(20ms, [&] { timed_out = true; }));
        EXPECT_EQ(i, 1u);
        EXPECT_TRUE(timed_out);
        EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
        // A ready case wins over a timeout.
        weft::chan<int> ready(1);
        ready.send(1);
        EXPECT_EQ(weft::select(weft::on_timeout(0ms, [] {}),
                               weft::on_recv(ready, [](std::optional<int>) {})),
                  1u);
      },
      cfg());
}

TEST_P(select_test, the_same_channel_in_several_cases) {
  weft::run(
      [] {
        weft::chan<int> ch(0);
        weft::go([ch]() mutable {
          for (int i = 0; i < 1000; ++i) ch.send(i);
        });
        long sum = 0;
        int by_case[2] = {0, 0};
        for (int i = 0; i < 1000; ++i) {
          auto take = [&](std::optional<int> v) { sum += *v; };
          by_case[weft::select(weft::on_recv(ch, take), weft::on_recv(ch, take))]++;
        }
        EXPECT_EQ(sum, 999 * 1000 / 2);
        EXPECT_EQ(by_case[0] + by_case[1], 1000);
      },
      cfg());
}

TEST_P(select_test, nil_channels_are_never_chosen) {
  weft::run(
      [] {
        weft::chan<int> nil, real(1);
        real.send(5);
        for (int i = 0; i < 100; ++i) {
          EXPECT_EQ(weft::select(weft::on_recv(nil, [](std::optional<int>) {}),
                                 weft::on_send(nil, 1, [] {}), weft::on_default([] {})),
                    2u);
        }
        EXPECT_EQ(weft::select(weft::on_recv(nil, [](std::optional<int>) {}),
                               weft::on_recv(real, [](std::optional<int>) {})),
                  1u);
      },
      cfg());
}

TEST(select_os_threads, selects_from_a_plain_thread) {
  weft::chan<int> a(0), b(0);
  std::thread t([&] { b.send(9); });
  int got = 0;
  EXPECT_EQ(weft::select(weft::on_recv(a, [](std::optional<int>) {}),
                         weft::on_recv(b, [&](std::optional<int> v) { got = *v; })),
            1u);
  t.join();
  EXPECT_EQ(got, 9);
}

}  // namespace
