// Green-thread stacks: overflow is reported by name, per-spawn sizes allow deep recursion.
#include <alloca.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;

// Roughly `depth` KiB of stack; not a tail call, so the compiler cannot turn it into a loop.
__attribute__((noinline)) int recurse(int depth) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(depth);
  if (depth == 0) return frame[0];
  return recurse(depth - 1) + frame[0];
}

// Death tests here re-run the binary (threadsafe style): the stack guard policy is chosen once
// per process, at the first stack, so each child must start fresh to see WEFT_STACK_GUARDS.
struct death_test_env {
  explicit death_test_env(const char* guards) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    if (guards) setenv("WEFT_STACK_GUARDS", guards, 1);
  }
  ~death_test_env() { unsetenv("WEFT_STACK_GUARDS"); }
};

template <class F>
void run_on_two_workers(F main) {
  weft::config cfg;
  cfg.workers = 2;
  weft::run(main, cfg);
}

TEST(stack_death, overflow_names_the_green_thread_and_aborts) {
  death_test_env env(nullptr);
  EXPECT_DEATH(run_on_two_workers([] {
                 weft::go([] { recurse(1 << 30); });
                 weft::sleep_for(60s);
               }),
               "weft: stack overflow in green thread [0-9]+ \\(stack reserved: 128 KiB");
}

// The fallback for kernels without MADV_GUARD_INSTALL, forced: mprotect guards still catch an
// overflow.
TEST(stack_death, forced_mprotect_guards_catch_overflow) {
  death_test_env env("mprotect");
  EXPECT_DEATH(run_on_two_workers([] {
                 std::fprintf(stderr, "guards=%s\n", weft::stack_guards());
                 weft::go([] { recurse(1 << 30); });
                 weft::sleep_for(60s);
               }),
               "guards=mprotect.*weft: stack overflow in green thread [0-9]+");
}

// When the mprotect ration is spent, stacks go unguarded, a warning says so once, and
// everything still runs.
TEST(stack_death, a_spent_guard_ration_warns_and_keeps_running) {
  death_test_env env("mprotect:4");
  constexpr int n = 200;
  EXPECT_EXIT(
      {
        int finished = 0;
        run_on_two_workers([&] {
          weft::chan<int> gate(0);
          weft::wait_group done;
          done.add(n);
          for (int i = 0; i < n; ++i)
            weft::go([&, gate]() mutable {
              gate.recv();
              done.done();
            });
          weft::sleep_for(20ms);
          gate.close();
          done.wait();
          finished = n - static_cast<int>(done.count());
          std::fprintf(stderr, "guards=%s finished=%d\n", weft::stack_guards(), finished);
        });
        std::exit(finished == n ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "mapped WITHOUT guard pages.*guards=none finished=200");
}

class stack_test : public weft_test::workers {};
WEFT_WORKER_COUNTS(stack_test);

TEST_P(stack_test, a_per_spawn_stack_size_allows_deep_recursion) {
  weft::run(
      [] {
        // ~2 MiB of frames: far beyond the 128 KiB default, within the 8 MiB asked for.
        auto h =
            weft::spawn(weft::spawn_options{.stack_size = 8 << 20}, [] { return recurse(2000); });
        h.join();
      },
      cfg());
}

// Stacks of a per-spawn size are pooled like default ones: green threads spawned one after
// another with 1 MiB stacks reuse one mapping (each used to map its own, and probe another at
// spawn), and trim() unmaps what is pooled.
TEST_P(stack_test, per_spawn_stack_sizes_are_reused) {
  weft::run(
      [] {
        (void)weft::spawn(weft::spawn_options{.stack_size = 1 << 20}, [] {
          return recurse(300);
        }).join();
        const std::uint64_t mapped = weft::stats().stacks_mapped;
        for (int i = 0; i < 200; ++i) {
          EXPECT_EQ(
              weft::spawn(weft::spawn_options{.stack_size = 1 << 20}, [i] { return i; }).join(), i);
        }
        // Another worker may have taken one while this one's was not yet back in the pool.
        EXPECT_LE(weft::stats().stacks_mapped, mapped + weft::stats().workers);
        // The last joined green thread's stack goes back to the pool once its worker has
        // switched away from it, which may come a moment after join() returned (the chaos
        // schedule stretches that moment): trim until the 1 MiB stack has been unmapped.
        std::size_t trimmed = 0;
        std::int64_t freed = 0;
        for (int tries = 0; tries < 1000 && freed < (1 << 20); ++tries) {
          const auto before = static_cast<std::int64_t>(weft::stats().stack_bytes_reserved);
          trimmed += weft::trim();
          freed += before - static_cast<std::int64_t>(weft::stats().stack_bytes_reserved);
          if (freed < (1 << 20)) weft::sleep_for(std::chrono::milliseconds(1));
        }
        EXPECT_GE(trimmed, 1u);
        EXPECT_GE(freed, 1 << 20);
      },
      cfg());
}

TEST_P(stack_test, the_main_green_thread_has_a_larger_stack_than_the_default) {
  // ~600 KiB of frames: would overflow the 128 KiB default, fits weft::main_stack_size (1 MiB).
  bool done = false;
  weft::run(
      [&] {
        (void)recurse(600);
        done = true;
      },
      cfg());
  EXPECT_TRUE(done);
}

}  // namespace

namespace {

TEST_P(stack_test, a_stack_that_cannot_be_mapped_throws_from_spawn_and_harms_nothing) {
  weft::run(
      [] {
        std::atomic<int> ran{0};
        // 1 PiB: beyond the user address space, so the kernel refuses it.
        const weft::spawn_options huge{.stack_size = std::size_t{1} << 50};
        try {
          weft::go(huge, [&] { ++ran; });
          ADD_FAILURE() << "go did not throw";
        } catch (const std::system_error& e) {
          EXPECT_NE(std::string(e.what()).find("cannot map a green-thread stack"),
                    std::string::npos);
        }
        EXPECT_THROW(weft::spawn(huge, [] { return 1; }), std::system_error);
        // Everything else still works.
        EXPECT_EQ(weft::spawn([] { return 7; }).join(), 7);
        EXPECT_EQ(ran.load(), 0);
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

}  // namespace

namespace {

// `n` green threads parked at once on a gate, each having run `first` on its own stack; release()
// lets them all end and waits until their stacks are back in the pools.
class parked_crowd {
 public:
  template <class F>
  parked_crowd(int n, F first) {
    started_.add(n);
    ended_.add(n);
    for (int i = 0; i < n; ++i) {
      weft::go([this, first, gate = gate_]() mutable {
        first();
        started_.done();
        (void)gate.recv();
        ended_.done();
      });
    }
    started_.wait();
  }
  void release() {
    gate_.close();
    ended_.wait();
    // Until every other green thread has exited, their stacks are still coming back.
    while (weft::stats().green_threads_live > 1) weft::sleep_for(std::chrono::milliseconds(1));
  }

 private:
  weft::wait_group started_, ended_;
  weft::chan<int> gate_{0};
};

TEST_P(stack_test, trim_returns_pooled_stacks) {
  constexpr int n = weft_test::sanitized ? 500 : 20000;
  weft::run(
      [] {
        parked_crowd crowd(n, [] {});  // all parked at once: n stacks in use
        EXPECT_GE(weft::stats().stacks_mapped, static_cast<std::uint64_t>(n));
        crowd.release();
        const auto before = weft::stats();
        const std::size_t released = weft::trim();
        const auto after = weft::stats();
        EXPECT_GT(released, 0u);
        // At least what trim() says (the monitor's scavenger may unmap some in between).
        EXPECT_LE(after.stacks_mapped, before.stacks_mapped - released);
        const std::uint64_t each = weft::config{}.stack_size + 4096;  // guard page included
        EXPECT_GE(before.stack_bytes_reserved - after.stack_bytes_reserved, released * each);
        // What is left: the workers' small caches, main's own stack, and the caches of spare
        // workers (up to one per worker): a spare running during the trim keeps its cache, and
        // one retiring just after it hands its cache to the depot, where it is still mapped.
        EXPECT_LE(after.stacks_mapped, 64u * 2 * after.workers + 1u);
      },
      cfg());
}

}  // namespace

namespace {

// Committed bytes follow what the stacks really touch: green threads that each dirty 40 KiB of
// stack commit at least that much apiece while parked, within what is reserved; once they have
// ended and the pool is trimmed, most of it is gone again (the workers' caches, 64 stacks each,
// keep theirs).
TEST_P(stack_test, committed_stack_bytes_follow_what_stacks_touch) {
  constexpr int n = 2000;
  constexpr std::size_t touched = 40 * 1024;
  weft::run(
      [] {
        EXPECT_EQ(weft::stats().stack_bytes_committed, 0u);  // counters only: not measured
        weft::trim();
        const auto idle = weft::stats(weft::stats_detail::stack_memory);
        parked_crowd crowd(n, [] {
          // alloca: on the green thread's own stack even where ASan moves locals aside.
          auto* deep = static_cast<volatile char*>(alloca(touched));
          for (std::size_t k = 0; k < touched; k += 512) deep[k] = static_cast<char>(k);
        });
        const auto parked = weft::stats(weft::stats_detail::stack_memory);
        EXPECT_GE(parked.stack_bytes_committed, idle.stack_bytes_committed + n * touched);
        EXPECT_LE(parked.stack_bytes_committed, parked.stack_bytes_reserved);
        crowd.release();
        weft::trim();
        const auto after = weft::stats(weft::stats_detail::stack_memory);
        EXPECT_LT(after.stack_bytes_committed, parked.stack_bytes_committed / 2);
      },
      cfg());
}

// A million green threads parked at once on one channel (100K under ASan; 2,000 under TSan,
// whose bookkeeping costs ~10 ms per fiber here and cannot track more than ~7,000 at once), then
// released: each runs on past its receive exactly once, and all of them were parked together.
TEST(stack_scale, a_million_green_threads_park_at_once_and_each_is_released_exactly_once) {
  constexpr int n = weft_test::thread_sanitized ? 2'000
                    : weft_test::sanitized      ? 100'000
                                                : 1'000'000;
  std::vector<std::uint8_t> released(n, 0);
  weft::config c;
  c.workers = 2;
  weft::run(
      [&] {
        weft::chan<int> gate(0);
        weft::wait_group parked, done;
        parked.add(n);
        done.add(n);
        for (int i = 0; i < n; ++i) {
          weft::go([&, i, gate]() mutable {
            parked.done();
            if (gate.recv()) std::abort();  // nothing is ever sent: only close releases it
            ++released[static_cast<std::size_t>(i)];
            done.done();
          });
        }
        parked.wait();
        while (weft::stats().parked < static_cast<std::uint64_t>(n)) weft::sleep_for(1ms);
        const auto st = weft::stats();
        EXPECT_EQ(st.parked, static_cast<std::uint64_t>(n));
        EXPECT_GE(st.stacks_mapped, static_cast<std::uint64_t>(n));
        EXPECT_EQ(std::count(released.begin(), released.end(), 0), n);
        gate.close();
        done.wait();
      },
      c);
  EXPECT_EQ(std::count(released.begin(), released.end(), 1), n);
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

}  // namespace

namespace {

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

// Green threads that once recursed deep do not keep those pages once their stacks have sat
// pooled for a scavenge period (a second): only the top of each pooled stack stays committed.
TEST(stack_pages, a_pooled_stack_gives_back_its_pages_below_the_committed_top) {
  if (weft_test::sanitized) GTEST_SKIP() << "sanitizer shadow memory blurs RSS";
  constexpr int n = 3000;
  long rss_base = 0, rss_peak = 0, rss_after = 0;
  run_on_two_workers([&] {
    rss_base = rss_kib();
    weft::chan<int> gate(0);
    weft::wait_group deep, done;
    deep.add(n);
    done.add(n);
    for (int i = 0; i < n; ++i) {
      weft::go([&, gate]() mutable {
        (void)recurse(44);  // ~44 KiB of the 128 KiB stack touched
        deep.done();
        (void)gate.recv();
        done.done();
      });
    }
    deep.wait();
    rss_peak = rss_kib();
    gate.close();
    done.wait();
    while (weft::stats().green_threads_live > 1) weft::sleep_for(1ms);
    // The monitor's scavenger gives the pages back once the stacks sat untaken for a whole
    // period (one to two seconds from here); a loaded machine may take a little longer.
    for (int tries = 0; tries < 80; ++tries) {
      rss_after = rss_kib();
      if (rss_after - rss_base < (rss_peak - rss_base) / 2) break;
      weft::sleep_for(100ms);
    }
  });
  const long grown = rss_peak - rss_base;
  ASSERT_GT(grown, n * 40L);  // each really touched its ~44 KiB
  // Pooled: 16 KiB each at most, but the workers' caches (64 stacks each) keep theirs whole.
  EXPECT_LT(rss_after - rss_base, grown / 2) << "base " << rss_base << " peak " << rss_peak;
}

}  // namespace

namespace {

// A burst's stacks do not stay mapped while the runtime keeps busy: once they have sat untaken
// for a scavenge period, the monitor unmaps all but the depot's keep (4,096), although no worker
// ever sleeps (a green thread yields in a loop throughout).
TEST(stack_pages, a_busy_runtime_unmaps_a_bursts_stacks_beyond_the_keep) {
  constexpr int n = weft_test::thread_sanitized ? 5000 : weft_test::sanitized ? 6000 : 20000;
  static constexpr std::uint64_t keep = 4096;
  run_on_two_workers([] {
    std::atomic<bool> stop{false};
    weft::wait_group busy;
    busy.add(1);
    weft::go([&] {
      while (!stop.load(std::memory_order_relaxed)) weft::yield();
      busy.done();
    });
    weft::chan<int> gate(0);
    weft::wait_group parked, ended;
    parked.add(n);
    ended.add(n);
    for (int i = 0; i < n; ++i) {
      weft::go([&, gate]() mutable {
        parked.done();
        (void)gate.recv();
        ended.done();
      });
    }
    parked.wait();
    // All parked: every one holds its stack, which no scavenger may take.
    EXPECT_GE(weft::stats().stacks_mapped, static_cast<std::uint64_t>(n));
    gate.close();
    ended.wait();
    while (weft::stats().green_threads_live > 2) weft::sleep_for(1ms);  // main and the yielder
    weft::runtime_stats st;
    for (int tries = 0; tries < 80; ++tries) {
      st = weft::stats();
      if (st.stacks_mapped <= keep + 64u * 2 * (st.workers + st.spare_workers) + 2u) break;
      weft::sleep_for(100ms);
    }
    EXPECT_LE(st.stacks_mapped, keep + 64u * 2 * (st.workers + st.spare_workers) + 2u);
    EXPECT_GE(st.stacks_mapped, keep);  // the keep stays ready: no worker slept for a second
    stop = true;
    busy.wait();
  });
}

// Once every worker has slept for a second, the monitor unmaps the stacks pooled in the depot.
TEST(stack_pages, an_idle_runtime_trims_its_pooled_stacks) {
  constexpr int n = weft_test::sanitized ? 1000 : 5000;
  run_on_two_workers([] {
    weft::chan<int> gate(0);
    weft::wait_group done;
    done.add(n);
    for (int i = 0; i < n; ++i) {
      weft::go([&, gate]() mutable {
        (void)gate.recv();
        done.done();
      });
    }
    while (weft::stats().parked < static_cast<std::uint64_t>(n)) weft::sleep_for(1ms);
    gate.close();
    done.wait();
    while (weft::stats().green_threads_live > 1) weft::sleep_for(1ms);
    EXPECT_GT(weft::stats().stacks_mapped, static_cast<std::uint64_t>(n / 2));  // pooled, untrimmed
    // Every worker asleep for over a second (main waits on a timer) and the monitor trims. A
    // loaded machine may take longer to let them all fall asleep: each try is a fresh period.
    // Left: the workers' caches (64 stacks each, a spare's if one ran) and main's own stack.
    weft::runtime_stats st;
    for (int attempt = 0; attempt < 6; ++attempt) {
      weft::sleep_for(1500ms);
      st = weft::stats();
      if (st.stacks_mapped <= 64u * (st.workers + st.spare_workers) + 1u) break;
    }
    EXPECT_LE(st.stacks_mapped, 64u * (st.workers + st.spare_workers) + 1u);
  });
}

}  // namespace
