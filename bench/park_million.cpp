// Many green threads parked at once on one channel, then released: memory per green thread and
// time. The Go peer is bench/peers/go/park. Usage: park_million [count] [workers] [tasks]
// ("tasks": stackless weft::task's instead of stackful green threads)
// Prints one line: count, workers, spawn+park s, release s, peak RSS, page tables and committed
// stack per green thread (KiB), RSS after trim (KiB) and as a share of the peak.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <weft/weft.hpp>

#include "proc_status.hpp"

using weft_bench::status_kib;

namespace {

weft::task<void> parked_task(weft::wait_group* parked, weft::wait_group* finished,
                             weft::chan<int> gate) {
  parked->done();
  (void)co_await gate.async_recv();
  finished->done();
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  weft::config cfg;
  cfg.workers = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 0;
  const bool tasks = argc > 3 && std::string_view(argv[3]) == "tasks";
  const long rss_before = status_kib("VmRSS:");
  return weft::run(
      [&] {
        using clock = std::chrono::steady_clock;
        const auto t0 = clock::now();
        weft::chan<int> gate(0);
        weft::wait_group parked, finished;
        parked.add(n);
        finished.add(n);
        for (long i = 0; i < n; ++i) {
          if (tasks) {
            weft::go(parked_task(&parked, &finished, gate));
            continue;
          }
          weft::go([&parked, &finished, gate]() mutable {
            parked.done();
            (void)gate.recv();
            finished.done();
          });
        }
        parked.wait();
        weft::yield();  // the last ones reach recv
        const auto t1 = clock::now();
        const long rss_peak = status_kib("VmRSS:");
        const long pte = status_kib("VmPTE:");
        const auto peak = weft::stats(weft::stats_detail::stack_memory);
        gate.close();
        finished.wait();
        while (weft::stats().green_threads_live > 1) weft::sleep_for(std::chrono::milliseconds(1));
        const auto t2 = clock::now();
        weft::trim();
        const long rss_after = status_kib("VmRSS:");
        std::printf(
            "park count=%ld workers=%u kind=%s spawn_park_s=%.3f release_s=%.3f rss_kib_per=%.2f "
            "pte_kib_per=%.2f stack_committed_kib_per=%.2f after_trim_kib=%ld "
            "after_trim_share=%.3f\n",
            n, weft::stats().workers, tasks ? "tasks" : "green",
            std::chrono::duration<double>(t1 - t0).count(),
            std::chrono::duration<double>(t2 - t1).count(),
            static_cast<double>(rss_peak - rss_before) / static_cast<double>(n),
            static_cast<double>(pte) / static_cast<double>(n),
            static_cast<double>(peak.stack_bytes_committed) / 1024.0 / static_cast<double>(n),
            rss_after, static_cast<double>(rss_after) / static_cast<double>(rss_peak));
        return 0;
      },
      cfg);
}
