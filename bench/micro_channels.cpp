// Channel micro benchmarks; bench/peers/go/micro runs the same shapes in Go, and the os_*
// benchmarks run them on OS threads through TBB's concurrent_bounded_queue and a mutex+condvar
// queue.
//   pingpong   unbuffered round trip between two green threads (ns per round trip)
//   mpmc       4 producers x 4 consumers through capacity 1024 (ns per message)
//   select4    4 senders on 4 channels, one receiver selecting over all (ns per message)
//   pipeline   source -> square -> sum through two unbuffered channels (ns per item)
#include <tbb/concurrent_queue.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_support.hpp"

namespace {

using weft_bench::run_timed;

void pingpong(benchmark::State& state) {
  run_timed(state, static_cast<unsigned>(state.range(0)), 500'000, [](std::int64_t rounds) {
    weft::chan<int> ping(0), pong(0);
    weft::go([=]() mutable {
      for (std::int64_t i = 0; i < rounds; ++i) pong.send(*ping.recv());
    });
    for (std::int64_t i = 0; i < rounds; ++i) {
      ping.send(1);
      (void)pong.recv();
    }
  });
}

void mpmc(benchmark::State& state) {
  constexpr int producers = 4, consumers = 4;
  run_timed(state, static_cast<unsigned>(state.range(0)), 2'000'000, [](std::int64_t n) {
    weft::chan<std::int64_t> ch(1024);
    weft::wait_group prod, cons;
    prod.add(producers);
    cons.add(consumers);
    for (int p = 0; p < producers; ++p) {
      weft::go([&] {
        for (std::int64_t i = 0; i < n / producers; ++i) ch.send(i);
        prod.done();
      });
    }
    for (int c = 0; c < consumers; ++c) {
      weft::go([&] {
        std::int64_t sum = 0;
        for (std::int64_t v : ch) sum += v;
        benchmark::DoNotOptimize(sum);
        cons.done();
      });
    }
    prod.wait();
    ch.close();
    cons.wait();
  });
}

void select4(benchmark::State& state) {
  run_timed(state, static_cast<unsigned>(state.range(0)), 1'000'000, [](std::int64_t n) {
    std::vector<weft::chan<std::int64_t>> chans;
    for (int i = 0; i < 4; ++i) chans.emplace_back(0);
    for (int s = 0; s < 4; ++s) {
      weft::go([c = chans[s], n]() mutable {
        for (std::int64_t i = 0; i < n / 4; ++i) c.send(i);
      });
    }
    std::int64_t sum = 0;
    auto add = [&](std::optional<std::int64_t> v) { sum += *v; };
    for (std::int64_t i = 0; i < n / 4 * 4; ++i) {
      weft::select(weft::on_recv(chans[0], add), weft::on_recv(chans[1], add),
                   weft::on_recv(chans[2], add), weft::on_recv(chans[3], add));
    }
    benchmark::DoNotOptimize(sum);
  });
}

void pipeline(benchmark::State& state) {
  run_timed(state, static_cast<unsigned>(state.range(0)), 1'000'000, [](std::int64_t n) {
    weft::chan<std::int64_t> numbers(0), squares(0);
    weft::go([=]() mutable {
      for (std::int64_t i = 0; i < n; ++i) numbers.send(i);
      numbers.close();
    });
    weft::go([=]() mutable {
      for (std::int64_t v : numbers) squares.send(v * v);
      squares.close();
    });
    std::int64_t sum = 0;
    for (std::int64_t v : squares) sum += v;
    benchmark::DoNotOptimize(sum);
  });
}

// OS-thread peers: one thread per producer/consumer, blocking queues.
template <class Queue>
void os_mpmc(benchmark::State& state) {
  constexpr int producers = 4, consumers = 4;
  constexpr std::int64_t n = 2'000'000;
  for (auto _ : state) {
    Queue q(1024);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
      threads.emplace_back([&] {
        for (std::int64_t i = 0; i < n / producers; ++i) q.push(i);
      });
    for (int c = 0; c < consumers; ++c)
      threads.emplace_back([&] {
        for (std::int64_t i = 0; i < n / consumers; ++i) benchmark::DoNotOptimize(q.pop());
      });
    for (auto& t : threads) t.join();
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  state.counters["ns_per_op"] = benchmark::Counter(
      static_cast<double>(n) * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert |
                                         benchmark::Counter::kIsIterationInvariant);
}

struct tbb_queue {
  tbb::concurrent_bounded_queue<std::int64_t> q;
  explicit tbb_queue(std::ptrdiff_t cap) { q.set_capacity(cap); }
  void push(std::int64_t v) { q.push(v); }
  std::int64_t pop() {
    std::int64_t v = 0;
    q.pop(v);
    return v;
  }
};

struct mutex_queue {
  std::mutex m;
  std::condition_variable not_empty, not_full;
  std::deque<std::int64_t> items;
  std::size_t cap;
  explicit mutex_queue(std::size_t c) : cap(c) {}
  void push(std::int64_t v) {
    std::unique_lock lk(m);
    not_full.wait(lk, [&] { return items.size() < cap; });
    items.push_back(v);
    not_empty.notify_one();
  }
  std::int64_t pop() {
    std::unique_lock lk(m);
    not_empty.wait(lk, [&] { return !items.empty(); });
    std::int64_t v = items.front();
    items.pop_front();
    not_full.notify_one();
    return v;
  }
};

void per_workers(benchmark::internal::Benchmark* b) {
  b->ArgName("workers")->Arg(1)->Arg(2)->UseManualTime()->Iterations(1);
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(pingpong)->Apply(per_workers);
BENCHMARK(mpmc)->Apply(per_workers);
BENCHMARK(select4)->Apply(per_workers);
BENCHMARK(pipeline)->Apply(per_workers);
BENCHMARK(os_mpmc<tbb_queue>)
    ->Name("os_mpmc_tbb")
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(os_mpmc<mutex_queue>)
    ->Name("os_mpmc_mutex")
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
