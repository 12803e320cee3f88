// Channel micro benchmarks; bench/peers/go/micro runs the same shapes in Go, and
// bench/thread_peers.cpp on OS threads through TBB's concurrent_bounded_queue and a
// mutex+condvar queue.
//   pingpong   unbuffered round trip between two green threads (ns per round trip)
//   mpmc       4 producers x 4 consumers through capacity 1024 (ns per message)
//   select4    4 senders on 4 channels, one receiver selecting over all (ns per message)
//   pipeline   source -> square -> sum through two unbuffered channels (ns per item)
#include <cstdint>
#include <vector>

#include "bench_support.hpp"

namespace {

using weft_bench::per_workers;
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

BENCHMARK(pingpong)->Apply(per_workers);
BENCHMARK(mpmc)->Apply(per_workers);
BENCHMARK(select4)->Apply(per_workers);
BENCHMARK(pipeline)->Apply(per_workers);

}  // namespace

BENCHMARK_MAIN();
