// The soak (tools/soak.sh): every kind of work weft does, at once, for many minutes, watched for
// growth and for anything lost. In one process:
//  - an HTTP server under bench/adversary.hpp's hostile load (parked green threads, allocation
//    churn, always-runnable greedy pairs), for tools/loadgen to drive from outside;
//  - a channel pipeline: batches of 10,000 numbers through four relays, each received once;
//  - timers: green threads sleeping at random, a 1 ms ticker read through select with a timeout;
//  - sockets opened and closed: clients connecting to an echo server, checking every byte;
//  - green threads spawned and cancelled: a scope of 200 with a 2 ms deadline each, parked on a
//    channel nobody sends on, and spawned handles cancelled and joined.
// Once a second it samples RSS, open descriptors, live green threads and stacks (one CSV row).
// At the end it fails if anything was lost or wrong, or if a resource grew after the warm-up:
// the smallest value of the last minute above the largest of the first minute after warm-up,
// by more than noise (a leak grows steadily; a burst does not last a minute).
//
// Usage: weft_soak --minutes M [--csv FILE] [--port P] [--parked N]
// Prints "listening on PORT" once the HTTP server is up, and the verdict at the end.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>
#include <weft/weft.hpp>

#include "adversary.hpp"
#include "http_session.hpp"

using namespace std::chrono_literals;

namespace {

struct options {
  double minutes = 20;
  std::string csv = "soak.csv";
  std::uint16_t port = 0;
  long parked = 10'000;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--minutes") {
      o.minutes = std::atof(v);
    } else if (a == "--csv") {
      o.csv = v;
    } else if (a == "--port") {
      o.port = static_cast<std::uint16_t>(std::atoi(v));
    } else if (a == "--parked") {
      o.parked = std::atol(v);
    } else {
      std::fprintf(stderr, "usage: %s --minutes M [--csv FILE] [--port P] [--parked N]\n", argv[0]);
      std::exit(2);
    }
  }
  return o;
}

// What the workloads did, and what they found wrong (must stay zero).
struct tally {
  std::atomic<std::uint64_t> batches{0}, echoes{0}, sleeps{0}, ticks{0}, cancelled{0};
  std::atomic<std::uint64_t> lost{0}, wrong{0}, errors{0};
};

struct sample {
  double t;
  long rss_kib, fds;
  std::uint64_t live, stacks_mapped;
};

long rss_kib() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

long open_fds() {
  long n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n - 1;  // the directory stream's own
}

void report(const char* what, const std::exception& e, tally& t) {
  ++t.errors;
  std::fprintf(stderr, "soak: %s: %s\n", what, e.what());
}

// Batches of numbers through a pipeline of four relays; each number must arrive exactly once.
void pipeline(const std::atomic<bool>& stop, tally& t) {
  constexpr int n = 10'000, relays = 4;
  while (!stop.load(std::memory_order_relaxed)) {
    weft::chan<int> in(64), out(64);
    weft::scope s;
    s.go([&] {
      for (int i = 0; i < n; ++i) in.send(i);
      in.close();
    });
    weft::wait_group relaying;
    relaying.add(relays);
    for (int r = 0; r < relays; ++r)
      s.go([&] {
        while (auto v = in.recv()) out.send(*v);
        relaying.done();
      });
    s.go([&] {
      relaying.wait();
      out.close();
    });
    std::vector<char> seen(n, 0);
    int got = 0;
    while (auto v = out.recv()) {
      if (*v < 0 || *v >= n || seen[*v]++) ++t.wrong;
      ++got;
    }
    s.wait();
    if (got != n) t.lost += static_cast<std::uint64_t>(std::abs(n - got));
    ++t.batches;
  }
}

void timers(const std::atomic<bool>& stop, tally& t) {
  weft::scope s;
  for (int i = 0; i < 64; ++i)
    s.go([&, i] {
      std::minstd_rand rng(static_cast<unsigned>(i) + 1);
      while (!stop.load(std::memory_order_relaxed)) {
        weft::sleep_for(std::chrono::microseconds(rng() % 3000));
        ++t.sleeps;
      }
    });
  s.go([&] {
    weft::ticker tick(1ms);
    while (!stop.load(std::memory_order_relaxed)) {
      weft::select(weft::on_recv(tick.channel(), [&](auto v) { t.ticks += v.has_value(); }),
                   weft::on_timeout(50ms, [] {}));
    }
  });
  s.wait();
}

// Connections opened, used and closed without pause; every byte echoed is checked.
void sockets(const std::atomic<bool>& stop, tally& t) {
  auto listener = weft::net::tcp_listener::bind("127.0.0.1:0");
  const auto where = listener.local_address();
  weft::scope server;
  server.go([&] {
    std::error_code ec;
    for (auto c = listener.accept(ec); !ec; c = listener.accept(ec))
      weft::go([c = std::move(c)]() mutable {
        std::error_code e;
        char buf[4096];
        for (std::size_t n; (n = c.read(std::span(buf), e)) > 0 && !e;) {
          c.write_all(std::string_view(buf, n), e);
          if (e) break;
        }
      });
  });
  weft::scope clients;
  for (int k = 0; k < 8; ++k)
    clients.go([&, k] {
      std::mt19937 rng(static_cast<unsigned>(k) + 7);
      std::string msg(1024, '\0'), back(1024, '\0');
      while (!stop.load(std::memory_order_relaxed)) {
        try {
          for (auto& ch : msg) ch = static_cast<char>(rng());
          auto c = weft::net::tcp_stream::connect(where, 5s);
          c.write_all(msg);
          std::size_t got = 0;
          while (got < msg.size()) {
            const std::size_t n = c.read(std::span(back.data() + got, msg.size() - got));
            if (n == 0) break;
            got += n;
          }
          if (got != msg.size() || back != msg) ++t.wrong;
          ++t.echoes;
        } catch (const std::system_error& e) {
          report("echo client", e, t);
        }
      }
    });
  clients.wait();
  server.cancel();  // the accept loop ends; then `listener` may go
  server.wait();
}

// Green threads started and cancelled: each must end cancelled, none may linger.
void spawn_and_cancel(const std::atomic<bool>& stop, tally& t) {
  weft::chan<int> never(0);
  while (!stop.load(std::memory_order_relaxed)) {
    std::atomic<int> ended{0};
    {
      weft::scope s;
      for (int i = 0; i < 200; ++i)
        s.go_with_deadline(2ms, [&] {
          try {
            never.recv();
          } catch (const weft::cancelled&) {
            ++ended;
            throw;
          }
        });
      s.wait();
    }
    auto h = weft::spawn([&] { never.recv(); });
    h.cancel();
    try {
      h.join();
      ++t.wrong;  // it was never sent anything: it cannot have returned normally
    } catch (const weft::cancelled&) {
      ++ended;
    }
    if (ended != 201) ++t.lost;
    t.cancelled += static_cast<std::uint64_t>(ended.load());
  }
}

void serve_http(weft::net::tcp_listener& listener, const std::atomic<bool>& stop) {
  std::error_code ec;
  for (auto c = listener.accept(ec); !ec && !stop; c = listener.accept(ec))
    weft::go([s = std::move(c)]() mutable {
      bench::serve_http(
          [&](char* buf, std::size_t len) {
            std::error_code e;
            const std::size_t n = s.read(std::span(buf, len), e);
            return e ? 0 : n;
          },
          [&](std::string_view out) {
            std::error_code e;
            s.write_all(out, e);
            return !e;
          });
    });
}

// Growth after warm-up: the floor of the last minute against the peak of the first minute
// after warm-up, plus an allowance for noise.
bool grew(const std::vector<sample>& v, double warmup_s, double window_s, const char* name,
          double allowance, auto field) {
  double early_peak = 0, late_floor = 1e300;
  const double end = v.back().t;
  bool any_early = false;
  for (const sample& s : v) {
    if (s.t >= warmup_s && s.t < warmup_s + window_s) {
      early_peak = std::max(early_peak, static_cast<double>(field(s)));
      any_early = true;
    }
    if (s.t > end - window_s) late_floor = std::min(late_floor, static_cast<double>(field(s)));
  }
  if (!any_early) return false;
  const bool bad = late_floor > early_peak + allowance;
  std::printf("soak: %-14s peak after warm-up %.0f, floor of the last minute %.0f%s\n", name,
              early_peak, late_floor, bad ? "  GREW" : "");
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  return weft::run([&] {
    auto listener = weft::net::tcp_listener::bind("127.0.0.1:" + std::to_string(o.port),
                                                  weft::net::listen_options{.backlog = 4096});
    std::printf("listening on %u\n", listener.port());
    std::fflush(stdout);
    bench::start_adversary(o.parked);

    std::atomic<bool> stop{false};
    tally t;
    weft::scope http;  // declared after the listener: cancelled and joined before it goes
    http.go([&] { serve_http(listener, stop); });
    weft::scope work;
    work.go([&] { pipeline(stop, t); });
    work.go([&] { timers(stop, t); });
    work.go([&] { sockets(stop, t); });
    work.go([&] { spawn_and_cancel(stop, t); });

    std::FILE* csv = std::fopen(o.csv.c_str(), "w");
    if (!csv) {
      std::perror(o.csv.c_str());
      return 2;
    }
    std::fprintf(csv,
                 "seconds,rss_mib,fds,live_green_threads,stacks_mapped,batches,echoes,"
                 "cancelled\n");
    std::vector<sample> samples;
    const auto t0 = std::chrono::steady_clock::now();
    const double total_s = o.minutes * 60;
    for (double now = 0; now < total_s;) {
      weft::sleep_for(1s);
      now = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const weft::runtime_stats st = weft::stats();
      const sample s{now, rss_kib(), open_fds(), st.green_threads_live, st.stacks_mapped};
      samples.push_back(s);
      std::fprintf(csv, "%.1f,%.1f,%ld,%llu,%llu,%llu,%llu,%llu\n", s.t, s.rss_kib / 1024.0, s.fds,
                   static_cast<unsigned long long>(s.live),
                   static_cast<unsigned long long>(s.stacks_mapped),
                   static_cast<unsigned long long>(t.batches.load()),
                   static_cast<unsigned long long>(t.echoes.load()),
                   static_cast<unsigned long long>(t.cancelled.load()));
      std::fflush(csv);
    }
    std::fclose(csv);
    stop = true;
    work.wait();  // each workload ends at its next round: none is cut off half-way
    http.cancel();
    http.wait();

    std::printf(
        "soak: %.1f min: %llu pipeline batches, %llu echoes, %llu sleeps, %llu ticks, "
        "%llu green threads cancelled\n",
        total_s / 60, static_cast<unsigned long long>(t.batches.load()),
        static_cast<unsigned long long>(t.echoes.load()),
        static_cast<unsigned long long>(t.sleeps.load()),
        static_cast<unsigned long long>(t.ticks.load()),
        static_cast<unsigned long long>(t.cancelled.load()));
    std::printf("soak: lost %llu, wrong %llu, errors %llu\n",
                static_cast<unsigned long long>(t.lost.load()),
                static_cast<unsigned long long>(t.wrong.load()),
                static_cast<unsigned long long>(t.errors.load()));
    // Warm-up: a fifth of the run, at least a minute; windows of a minute (less in short runs).
    const double warmup = std::max(60.0, total_s / 5);
    const double window = std::min(60.0, std::max(5.0, (total_s - warmup) / 3));
    bool bad = t.lost || t.wrong || t.errors || t.batches == 0 || t.echoes == 0;
    if (samples.empty() || samples.back().t < warmup + 2 * window) {
      std::printf("soak: too short to judge growth (at least %.0f s)\n", warmup + 2 * window);
    } else {
      bad |= grew(samples, warmup, window, "RSS (KiB)", 16 * 1024,
                  [](const sample& s) { return s.rss_kib; });
      bad |= grew(samples, warmup, window, "descriptors", 8, [](const sample& s) { return s.fds; });
      bad |= grew(samples, warmup, window, "green threads", 500,
                  [](const sample& s) { return s.live; });
      bad |= grew(samples, warmup, window, "stacks mapped", 500,
                  [](const sample& s) { return s.stacks_mapped; });
    }
    std::printf("soak: %s\n", bad ? "FAILED" : "passed");
    return bad ? 1 : 0;
  });
}
