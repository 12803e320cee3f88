// Channel micro benchmarks; bench/peers/go/micro runs the same shapes in Go, and
// bench/thread_peers.cpp on OS threads through TBB's concurrent_bounded_queue and a
// mutex+condvar queue.
//   pingpong   unbuffered round trip between two green threads (ns per round trip)
//   mpmc       4 producers x 4 consumers through capacity 1024 (ns per message)
//   select4    4 senders on 4 channels, one receiver selecting over all (ns per message)
//   pipeline   source -> square -> sum through two unbuffered channels (ns per item)
//   sieve      Go's concurrent prime sieve (test/chan/sieve1.go): a green thread per prime
//              filtering 2..7919 through unbuffered channels, 1,000 primes (ns per prime)
//   chain      Go's daisy chain (test/chan/daisy): 10,000 green threads in a line pass one
//              value end to end, built afresh each of 10 rounds (ns per green thread)
//   task_pingpong        pingpong between two stackless tasks (weft::task)
//   task_green_pingpong  pingpong between a task and a stackful green thread
//   task_spawn_complete  1M detached tasks started and finished (ns per task)
#include <cstdint>
#include <cstdlib>
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

weft::task<void> echo_task(weft::chan<int> in, weft::chan<int> out, std::int64_t rounds) {
  for (std::int64_t i = 0; i < rounds; ++i) co_await out.async_send(*co_await in.async_recv());
}

weft::task<void> ping_task(weft::chan<int> out, weft::chan<int> in, std::int64_t rounds,
                           weft::wait_group* done) {
  for (std::int64_t i = 0; i < rounds; ++i) {
    co_await out.async_send(1);
    (void)co_await in.async_recv();
  }
  done->done();
}

void task_pingpong(benchmark::State& state) {
  run_timed(state, static_cast<unsigned>(state.range(0)), 500'000, [](std::int64_t rounds) {
    weft::chan<int> ping(0), pong(0);
    weft::wait_group done(1);
    weft::go(echo_task(ping, pong, rounds));
    weft::go(ping_task(ping, pong, rounds, &done));
    done.wait();
  });
}

void task_green_pingpong(benchmark::State& state) {
  run_timed(state, static_cast<unsigned>(state.range(0)), 500'000, [](std::int64_t rounds) {
    weft::chan<int> ping(0), pong(0);
    weft::go(echo_task(ping, pong, rounds));
    for (std::int64_t i = 0; i < rounds; ++i) {
      ping.send(1);
      (void)pong.recv();
    }
  });
}

weft::task<void> finish_task(weft::wait_group* wg) {
  wg->done();
  co_return;
}

void task_spawn_complete(benchmark::State& state) {
  run_timed(state, static_cast<unsigned>(state.range(0)), 1'000'000, [](std::int64_t n) {
    weft::wait_group wg;
    wg.add(n);
    for (std::int64_t i = 0; i < n; ++i) weft::go(finish_task(&wg));
    wg.wait();
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

// The numbers are bounded (Go's test runs forever) so that every filter ends when its input
// closes, in both programs alike.
void sieve(benchmark::State& state) {
  constexpr std::int64_t primes = 1000, last = 7919;  // the 1,000th prime
  run_timed(state, static_cast<unsigned>(state.range(0)), primes, [](std::int64_t) {
    weft::chan<std::int64_t> ch(0);
    weft::go([ch]() mutable {
      for (std::int64_t i = 2; i <= last; ++i) ch.send(i);
      ch.close();
    });
    std::int64_t found = 0;
    while (auto prime = ch.recv()) {
      ++found;
      weft::chan<std::int64_t> out(0);
      weft::go([in = ch, out, p = *prime]() mutable {
        for (std::int64_t v : in) {
          if (v % p != 0) out.send(v);
        }
        out.close();
      });
      ch = out;
    }
    if (found != primes) std::abort();
  });
}

void chain(benchmark::State& state) {
  constexpr std::int64_t length = 10'000, rounds = 10;
  run_timed(state, static_cast<unsigned>(state.range(0)), length * rounds, [](std::int64_t) {
    for (std::int64_t r = 0; r < rounds; ++r) {
      weft::chan<std::int64_t> leftmost(0);
      weft::chan<std::int64_t> left = leftmost;
      for (std::int64_t i = 0; i < length; ++i) {
        weft::chan<std::int64_t> right(0);
        weft::go([left, right]() mutable { left.send(1 + *right.recv()); });
        left = right;
      }
      left.send(1);
      if (*leftmost.recv() != length + 1) std::abort();
    }
  });
}

BENCHMARK(pingpong)->Apply(per_workers);
BENCHMARK(mpmc)->Apply(per_workers);
BENCHMARK(select4)->Apply(per_workers);
BENCHMARK(pipeline)->Apply(per_workers);
BENCHMARK(sieve)->Apply(per_workers);
BENCHMARK(chain)->Apply(per_workers);
BENCHMARK(task_pingpong)->Apply(per_workers);
BENCHMARK(task_green_pingpong)->Apply(per_workers);
BENCHMARK(task_spawn_complete)->Apply(per_workers);

}  // namespace

BENCHMARK_MAIN();
