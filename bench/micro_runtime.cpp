// Micro benchmarks of the runtime core; bench/peers/go/micro runs the same shapes in Go.
//   spawn_complete  1M detached green threads started and finished (ns per green thread)
//   yield           two green threads yielding to each other (ns per yield)
//   wakeup          two green threads handing a baton through mutex + condition_variable
//                   (ns per round trip: two parks, two wake-ups)
//   fib             fork-join fib(35), a green thread per call above 20 (ns per whole fib)
//   task_fib        the same with a stackless weft::task per call above 20
//   cancel_parked   100K green threads of a scope parked in recv: cancel the scope and join
//                   them all (ns per green thread; set-up untimed); request_ns_per_op: the
//                   cancel() call alone, which claims and queues them all
//   cancel_parked_nothrow  the same, parked in the no-throw recv(ec): no exception to unwind
//   cancel_parked_select   the same, parked in select(on_recv, on_cancelled): Go's shape, a
//                   select on a channel and ctx.Done()
//   wake_parked     the same 100K woken by closing their channel instead, and joined: what
//                   cancel_parked costs beyond waking
//   throw_cancelled weft::cancelled thrown and caught 5 frames up, as a cancelled recv's is on
//                   its way to the scope's catch: the floor of cancel_parked minus wake_parked
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "bench_support.hpp"
#include "fib_kernel.hpp"

namespace {

using weft_bench::per_workers;
using weft_bench::run_timed;

void spawn_complete(benchmark::State& state) {
  run_timed(state, static_cast<unsigned>(state.range(0)), 1'000'000, [](std::int64_t n) {
    weft::wait_group wg;
    wg.add(n);
    for (std::int64_t i = 0; i < n; ++i) weft::go([&wg] { wg.done(); });
    wg.wait();
  });
}

void yield(benchmark::State& state) {
  constexpr std::int64_t per_thread = 5'000'000;
  run_timed(state, static_cast<unsigned>(state.range(0)), 2 * per_thread, [](std::int64_t) {
    weft::wait_group wg;
    wg.add(2);
    for (int t = 0; t < 2; ++t) {
      weft::go([&wg] {
        for (std::int64_t i = 0; i < per_thread; ++i) weft::yield();
        wg.done();
      });
    }
    wg.wait();
  });
}

void wakeup(benchmark::State& state) {
  run_timed(state, static_cast<unsigned>(state.range(0)), 500'000, [](std::int64_t rounds) {
    weft::mutex m;
    weft::condition_variable cv;
    std::int64_t turn = 0;  // even: ping's turn, odd: pong's
    weft::wait_group wg;
    wg.add(2);
    for (int side = 0; side < 2; ++side) {
      weft::go([&, side] {
        std::unique_lock lock(m);
        for (std::int64_t i = 0; i < rounds; ++i) {
          cv.wait(lock, [&] { return turn % 2 == side; });
          ++turn;
          cv.notify_one();
        }
        wg.done();
      });
    }
    wg.wait();
  });
}

using weft_bench::serial_fib;

std::int64_t fork_join_fib(int n) {
  if (n <= 20) return serial_fib(n);
  auto left = weft::spawn([n] { return fork_join_fib(n - 1); });
  std::int64_t right = fork_join_fib(n - 2);
  return left.join() + right;
}

void fib(benchmark::State& state) {
  run_timed(state, static_cast<unsigned>(state.range(0)), 1, [](std::int64_t) {
    if (fork_join_fib(35) != 9227465) std::abort();
  });
}

// The left half runs as a task of its own (stealable), the right inside this one.
weft::task<std::int64_t> fork_join_fib_task(int n) {
  if (n <= 20) co_return serial_fib(n);
  auto left = weft::spawn(fork_join_fib_task(n - 1));
  const std::int64_t right = co_await fork_join_fib_task(n - 2);
  co_return co_await std::move(left) + right;
}

void task_fib(benchmark::State& state) {
  run_timed(state, static_cast<unsigned>(state.range(0)), 1, [](std::int64_t) {
    if (weft::spawn(fork_join_fib_task(35)).join() != 9227465) std::abort();
  });
}

// How the crowd waits.
enum class crowd_wait { recv, recv_nothrow, select_on_cancelled };

// 100K green threads of `s` parked on `never`; returns once all are parked.
void park_crowd(weft::scope& s, weft::chan<int>& never, std::int64_t n, crowd_wait how) {
  const std::uint64_t before = weft::stats().parked;
  for (std::int64_t i = 0; i < n; ++i) {
    s.go([never, how]() mutable {
      switch (how) {
        case crowd_wait::recv:
          (void)never.recv();
          break;
        case crowd_wait::recv_nothrow: {
          std::error_code ec;
          (void)never.recv(ec);
          break;
        }
        case crowd_wait::select_on_cancelled:
          weft::select(weft::on_recv(never, [](std::optional<int>) {}), weft::on_cancelled([] {}));
          break;
      }
    });
  }
  while (weft::stats().parked < before + static_cast<std::uint64_t>(n))
    weft::sleep_for(std::chrono::microseconds(200));
}

// Times the request (cancel() or close(): every green thread claimed and queued) and the whole
// (until all are joined); reports the whole as ns_per_op and the request as request_ns_per_op.
template <bool Cancel, crowd_wait How = crowd_wait::recv>
void release_parked(benchmark::State& state) {
  constexpr std::int64_t n = 100'000;
  weft::config cfg;
  cfg.workers = static_cast<unsigned>(state.range(0));
  double request = 0, whole = 0;
  for (auto _ : state) {
    weft::run(
        [&] {
          for (int round = 0; round < 2; ++round) {  // the first warms up
            weft::chan<int> never(0);
            weft::scope s;
            park_crowd(s, never, n, How);
            const auto t0 = std::chrono::steady_clock::now();
            if constexpr (Cancel) {
              s.cancel();
            } else {
              never.close();
            }
            const auto t1 = std::chrono::steady_clock::now();
            s.wait();
            const auto t2 = std::chrono::steady_clock::now();
            request = std::chrono::duration<double>(t1 - t0).count();
            whole = std::chrono::duration<double>(t2 - t0).count();
          }
        },
        cfg);
    state.SetIterationTime(whole);
  }
  weft_bench::report_ops(state, cfg.workers, n);
  state.counters["request_ns_per_op"] = request * 1e9 / n;
}
// Five frames from the throw to the catch, about as many as from a cancelled recv's park to the
// scope's catch.
[[gnu::noinline, noreturn]] void throw_from_wait() {
  throw weft::cancelled{};
}
[[gnu::noinline]] void frame_4() {
  throw_from_wait();
}
[[gnu::noinline]] void frame_3() {
  frame_4();
  benchmark::ClobberMemory();  // not a tail call
}
[[gnu::noinline]] void frame_2() {
  frame_3();
  benchmark::ClobberMemory();
}
[[gnu::noinline]] void frame_1() {
  frame_2();
  benchmark::ClobberMemory();
}

void throw_cancelled(benchmark::State& state) {
  run_timed(state, static_cast<unsigned>(state.range(0)), 100'000, [](std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      try {
        frame_1();
      } catch (const weft::cancelled&) {
      }
    }
  });
}

void cancel_parked(benchmark::State& state) {
  release_parked<true>(state);
}
void cancel_parked_nothrow(benchmark::State& state) {
  release_parked<true, crowd_wait::recv_nothrow>(state);
}
void cancel_parked_select(benchmark::State& state) {
  release_parked<true, crowd_wait::select_on_cancelled>(state);
}
void wake_parked(benchmark::State& state) {
  release_parked<false>(state);
}

BENCHMARK(spawn_complete)->Apply(per_workers);
BENCHMARK(yield)->Apply(per_workers);
BENCHMARK(wakeup)->Apply(per_workers);
BENCHMARK(fib)->Apply(per_workers);
BENCHMARK(task_fib)->Apply(per_workers);
BENCHMARK(cancel_parked)->Apply(per_workers);
BENCHMARK(cancel_parked_nothrow)->Apply(per_workers);
BENCHMARK(cancel_parked_select)->Apply(per_workers);
BENCHMARK(wake_parked)->Apply(per_workers);
BENCHMARK(throw_cancelled)->Apply(per_workers);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("weft_allocator", weft::runtime_allocator());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
