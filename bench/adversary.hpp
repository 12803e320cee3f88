// The hostile load of the tail-latency benchmark, carried in-process by a server (design.md):
//  - `parked` green threads, each holding a 1 KiB buffer, parked on a channel forever;
//  - an allocation churn: 64 KiB blocks allocated, touched and freed without pause;
//  - two greedy producer/consumer pairs whose channel operations never block (try_send and
//    try_recv on a buffered channel), so they are always runnable.
// The churn and the greedy pairs never park: only the cooperative budget makes them let the
// server's connections run. The Go peer (bench/peers/go/http_hello -adversary) carries the same.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <weft/weft.hpp>

namespace bench {

inline std::atomic<std::uint64_t> adversary_sink{0};  // keeps the optimizer honest

inline void start_adversary(long parked) {
  const auto t0 = std::chrono::steady_clock::now();
  weft::chan<int> never(0);  // nobody sends: its receivers stay parked until the process ends
  weft::wait_group holding;
  holding.add(static_cast<int>(parked));
  for (long i = 0; i < parked; ++i) {
    weft::go([never, &holding]() mutable {
      auto buf = std::make_unique<char[]>(1024);
      std::memset(buf.get(), 1, 1024);
      holding.done();
      never.recv();
      adversary_sink += static_cast<unsigned char>(buf[0]);
    });
  }
  holding.wait();  // all hold their buffer; they park on `never` right after
  weft::go(weft::named("adversary-churn"), [] {
    constexpr std::size_t block = 64 * 1024;
    std::unique_ptr<char[]> ring[16];
    for (std::uint64_t i = 0;; ++i) {
      auto& slot = ring[i % 16];
      slot = std::make_unique<char[]>(block);
      for (std::size_t off = 0; off < block; off += 4096) slot[off] = static_cast<char>(i);
      adversary_sink += static_cast<unsigned char>(slot[i % block]);
      weft::consume_budget();
    }
  });
  for (int pair = 0; pair < 2; ++pair) {
    weft::chan<std::uint64_t> ch(1024);
    weft::go(weft::named("adversary-producer"), [ch]() mutable {
      for (std::uint64_t i = 0;; ++i) ch.try_send(i);
    });
    weft::go(weft::named("adversary-consumer"), [ch]() mutable {
      for (;;) {
        if (auto v = ch.try_recv()) adversary_sink += *v;
      }
    });
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "adversary ready: %ld parked green threads in %.1f s\n", parked, secs);
  std::fflush(stderr);
}

}  // namespace bench
