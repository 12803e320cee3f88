// Shared by the micro benchmarks: run a measured body inside a fresh weft runtime.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <weft/weft.hpp>

namespace weft_bench {

// Runs `body(ops)` on the main green thread of a runtime with `workers` workers, once per
// benchmark iteration, and times only the body (runtime start-up and shutdown excluded).
// Each iteration first runs the body once untimed in the same runtime, as the Go peers do
// (bench/peers/go/micro): both sides are then measured warm, with their free lists, stack
// caches and the monitor's judgements as a running server would have them, not the first
// millisecond of a fresh runtime (at 2 workers, threads just started and caches still cold).
// Reports "ns_per_op", the figure the Go peers print for the same shape.
inline void report_ops(benchmark::State& state, unsigned workers, std::int64_t ops) {
  state.counters["ns_per_op"] = benchmark::Counter(
      static_cast<double>(ops) * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert |
                                           benchmark::Counter::kIsIterationInvariant);
  state.counters["workers"] = workers;
}

template <class Body>
void run_timed(benchmark::State& state, unsigned workers, std::int64_t ops, Body body) {
  weft::config cfg;
  cfg.workers = workers;
  for (auto _ : state) {
    double seconds = 0;
    weft::run(
        [&] {
          body(ops);  // warm-up
          auto t0 = std::chrono::steady_clock::now();
          body(ops);
          seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        },
        cfg);
    state.SetIterationTime(seconds);
  }
  report_ops(state, workers, ops);
}

// Each shape at 1 worker (single-threaded mode) and at all hardware threads, one run per
// repetition: tools/bench.sh asks for several repetitions and takes medians.
inline void per_workers(benchmark::internal::Benchmark* b) {
  const int all = static_cast<int>(std::thread::hardware_concurrency());
  b->ArgName("workers")->Arg(1);
  if (all > 1) b->Arg(all);
  b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
}

}  // namespace weft_bench
