#include <array>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace {

using weft_test::workers;

class spawn : public workers {};
WEFT_WORKER_COUNTS(spawn);

TEST_P(spawn, run_returns_mains_value) {
  EXPECT_EQ(weft::run([] { return 42; }, cfg()), 42);
  EXPECT_EQ(weft::run([] {}, cfg()), 0);
}

TEST_P(spawn, main_exception_reaches_run) {
  EXPECT_THROW(weft::run([]() -> int { throw std::runtime_error("boom"); }, cfg()),
               std::runtime_error);
}

TEST_P(spawn, hundred_thousand_green_threads_run_exactly_once) {
  constexpr int n = 100'000;
  std::vector<std::atomic<int>> ran(n);
  std::atomic<long> sum{0};
  weft::run(
      [&] {
        weft::wait_group wg;
        wg.add(n);
        for (int i = 0; i < n; ++i) {
          weft::go([&, i] {
            ran[i].fetch_add(1, std::memory_order_relaxed);
            sum.fetch_add(i, std::memory_order_relaxed);
            wg.done();
          });
        }
        wg.wait();
      },
      cfg());
  for (int i = 0; i < n; ++i) ASSERT_EQ(ran[i].load(), 1) << "green thread " << i;
  EXPECT_EQ(sum.load(), static_cast<long>(n) * (n - 1) / 2);
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
  EXPECT_EQ(weft::stats().green_threads_created, static_cast<std::uint64_t>(n) + 1);
}

TEST_P(spawn, join_returns_values_and_rethrows) {
  weft::run(
      [] {
        std::vector<weft::join_handle<int>> hs;
        for (int i = 0; i < 1000; ++i) hs.push_back(weft::spawn([i] { return i * i; }));
        long total = 0;
        for (auto& h : hs) total += h.join();
        long expect = 0;
        for (int i = 0; i < 1000; ++i) expect += i * i;
        EXPECT_EQ(total, expect);

        auto bad = weft::spawn([]() -> std::string { throw std::invalid_argument("nope"); });
        try {
          bad.join();
          ADD_FAILURE() << "join did not rethrow";
        } catch (const std::invalid_argument& e) {
          EXPECT_STREQ(e.what(), "nope");
        }
        auto v = weft::spawn([] {});
        v.join();
        EXPECT_FALSE(v.joinable());
        EXPECT_THROW(v.join(), std::logic_error);
      },
      cfg());
}

TEST_P(spawn, move_only_results_and_captures) {
  weft::run(
      [] {
        auto p = std::make_unique<int>(7);
        auto h = weft::spawn([p = std::move(p)]() mutable { return std::move(p); });
        auto r = h.join();
        ASSERT_TRUE(r);
        EXPECT_EQ(*r, 7);
      },
      cfg());
}

TEST_P(spawn, nested_spawns_fork_join) {
  std::function<long(int)> fib = [&](int n) -> long {
    if (n < 2) return n;
    if (n < 12) return fib(n - 1) + fib(n - 2);
    auto a = weft::spawn([&, n] { return fib(n - 1); });
    long b = fib(n - 2);
    return a.join() + b;
  };
  long r = 0;
  weft::run([&] { r = fib(22); }, cfg());
  EXPECT_EQ(r, 17711);
}

TEST_P(spawn, join_from_os_thread_and_go_from_os_thread) {
  weft::run(
      [] {
        std::atomic<int> done{0};
        weft::wait_group wg;
        wg.add(100);
        auto h = weft::spawn([] {
          weft::sleep_for(std::chrono::milliseconds(1));
          return 5;
        });
        std::thread os([&] {
          EXPECT_EQ(h.join(), 5);
          for (int i = 0; i < 100; ++i)
            weft::go([&] {
              done.fetch_add(1);
              wg.done();
            });
        });
        wg.wait();
        os.join();
        EXPECT_EQ(done.load(), 100);
      },
      cfg());
}

TEST_P(spawn, over_aligned_callables_are_stored_aligned_and_destroyed_once) {
  struct alignas(64) block {
    unsigned char bytes[64];
  };
  std::atomic<int> misaligned{0}, destroyed{0}, ran{0};
  struct counted {
    std::atomic<int>* destroyed;
    counted(std::atomic<int>& d) : destroyed(&d) {}
    counted(counted&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)) {}
    ~counted() {
      if (destroyed) destroyed->fetch_add(1);
    }
  };
  weft::run(
      [&] {
        constexpr int n = 1000;
        weft::wait_group wg;
        wg.add(n);
        for (int i = 0; i < n; ++i) {
          block b{};
          b.bytes[0] = static_cast<unsigned char>(i);
          weft::go(weft::named(i % 2 ? "aligned" : ""), [&, b, c = counted(destroyed), i] {
            if (reinterpret_cast<std::uintptr_t>(&b) % 64 != 0) misaligned.fetch_add(1);
            if (b.bytes[0] == static_cast<unsigned char>(i)) ran.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
      },
      cfg());
  EXPECT_EQ(misaligned.load(), 0);
  EXPECT_EQ(ran.load(), 1000);
  EXPECT_EQ(destroyed.load(), 1000);
}

// Records of finished green threads are reused per worker, by size class: captures of every size
// (names too), spawned interleaved so each class is reused by the others' neighbours, arrive
// intact and run once.
TEST_P(spawn, captures_of_every_size_survive_record_reuse) {
  std::atomic<int> intact{0}, ran{0};
  constexpr int n = 20000;
  weft::run(
      [&] {
        weft::wait_group wg;
        wg.add(n);
        auto spawn_sized = [&]<std::size_t words>(int i,
                                                  std::integral_constant<std::size_t, words>) {
          std::array<std::uint64_t, words> a;
          for (std::size_t k = 0; k < words; ++k) a[k] = static_cast<std::uint64_t>(i) * 131 + k;
          weft::go(weft::named(i % 3 ? "" : "sized"), [&, a, i] {
            bool ok = true;
            for (std::size_t k = 0; k < words; ++k)
              ok &= a[k] == static_cast<std::uint64_t>(i) * 131 + k;
            if (ok) intact.fetch_add(1);
            ran.fetch_add(1);
            wg.done();
          });
        };
        for (int i = 0; i < n; ++i) {
          switch (i % 5) {
            case 0:
              spawn_sized(i, std::integral_constant<std::size_t, 1>{});
              break;
            case 1:
              spawn_sized(i, std::integral_constant<std::size_t, 5>{});
              break;
            case 2:
              spawn_sized(i, std::integral_constant<std::size_t, 9>{});
              break;
            case 3:
              spawn_sized(i, std::integral_constant<std::size_t, 14>{});
              break;
            default:
              spawn_sized(i, std::integral_constant<std::size_t, 70>{});
              break;
          }
          if (i % 97 == 0) weft::yield();
        }
        wg.wait();
      },
      cfg());
  EXPECT_EQ(ran.load(), n);
  EXPECT_EQ(intact.load(), n);
}

TEST(spawn_errors, go_outside_run_throws) {
  EXPECT_THROW(weft::go([] {}), std::logic_error);
  weft::run([] { EXPECT_THROW(weft::run([] {}), std::logic_error); });
}

TEST(spawn_death, uncaught_exception_names_the_green_thread) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(weft::run([] {
                 weft::go([] { throw std::runtime_error("kaput"); });
                 weft::sleep_for(std::chrono::seconds(5));
               }),
               "uncaught exception in green thread [0-9]+: .*kaput");
}

}  // namespace
