// loadgen: an open-loop HTTP/1.1 load generator built on weft. It sends a fixed request rate over
// N keep-alive connections (a green thread each) and counts each request's latency from the
// moment it was due, not from when it was sent, so a stalled server cannot hide its stall by
// slowing the generator down (no coordinated omission).
//
//   loadgen --port P [--host 127.0.0.1] [--rate 10000] [--connections 1000] [--duration 15]
//           [--warmup 2] [--workers 1] [--path /]
//
// Request i (i = 0, 1, ...) is due at start + i / rate and goes to connection i mod N. A
// connection that is still waiting for an earlier answer sends its next request late, and that
// request's latency includes the wait. Requests due in the warm-up are sent but not counted. A
// request not answered by the end of the run plus a grace period, or lost to an error, is counted
// as an error. The last line is machine-readable: "loadgen key=value ...".
//
// Latency splits in two, reported apart: how late the request went out (the generator's own
// delay: its wait for a CPU, or behind its other connections), and how long its answer took
// after that. Where the generator shares the server's cores, the first is the floor under any
// server's tail.
#include <linux/sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <weft/weft.hpp>

#include "histogram.hpp"

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

struct options {
  std::string host = "127.0.0.1";
  unsigned port = 0;
  double rate = 10000;
  unsigned connections = 1000;
  double duration_s = 15;
  double warmup_s = 2;
  unsigned workers = 1;
  std::string path = "/";
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --port P [--host H] [--rate R] [--connections N] [--duration S] "
               "[--warmup S] [--workers W] [--path /]\n",
               argv0);
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    const char* v = argv[++i];
    if (a == "--host") {
      o.host = v;
    } else if (a == "--port") {
      o.port = static_cast<unsigned>(std::atoi(v));
    } else if (a == "--rate") {
      o.rate = std::atof(v);
    } else if (a == "--connections") {
      o.connections = static_cast<unsigned>(std::atoi(v));
    } else if (a == "--duration") {
      o.duration_s = std::atof(v);
    } else if (a == "--warmup") {
      o.warmup_s = std::atof(v);
    } else if (a == "--workers") {
      o.workers = static_cast<unsigned>(std::atoi(v));
    } else if (a == "--path") {
      o.path = v;
    } else {
      usage(argv[0]);
    }
  }
  if (o.port == 0 || o.rate <= 0 || o.connections == 0 || o.duration_s <= 0) usage(argv[0]);
  return o;
}

struct totals {
  std::atomic<std::uint64_t> ok{0};         // answered, counted in the histogram
  std::atomic<std::uint64_t> warmup_ok{0};  // answered during the warm-up
  std::atomic<std::uint64_t> errors{0};     // scheduled requests lost to an error or timeout
  std::atomic<std::uint64_t> connect_errors{0};
  std::atomic<std::uint64_t> bad_responses{0};
};

// Reads one HTTP response (headers, then Content-Length bytes of body). False on error, end of
// stream, deadline or a malformed response.
bool read_response(weft::net::tcp_stream& s, std::string& buf, totals& t) {
  std::size_t header_end = std::string::npos;
  std::size_t body = 0;
  char chunk[4096];
  for (;;) {
    if (header_end == std::string::npos) {
      header_end = buf.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        const std::string_view head(buf.data(), header_end);
        if (head.substr(0, 9) != "HTTP/1.1 " || head.substr(9, 3) != "200") {
          ++t.bad_responses;
          return false;
        }
        const std::size_t cl = head.find("Content-Length: ");
        if (cl == std::string_view::npos) {
          ++t.bad_responses;
          return false;
        }
        body = std::strtoul(head.data() + cl + 16, nullptr, 10);
      }
    }
    if (header_end != std::string::npos && buf.size() >= header_end + 4 + body) {
      buf.erase(0, header_end + 4 + body);
      return true;
    }
    std::error_code ec;
    const std::size_t n = s.read(std::span<char>(chunk, sizeof chunk), ec);
    if (ec || n == 0) return false;
    buf.append(chunk, n);
  }
}

void run_connection(const options& o, const weft::net::address& addr, unsigned k,
                    steady::time_point start, steady::time_point measure_from,
                    steady::time_point end, loadgen::histogram& h, loadgen::histogram& lag,
                    loadgen::histogram& turnaround, totals& t) {
  const auto period = std::chrono::duration<double>(1.0 / o.rate);
  const auto stride = period * o.connections;
  auto due_of = [&](std::uint64_t j) {
    return start + std::chrono::duration_cast<steady::duration>(period * k + stride * j);
  };
  std::uint64_t scheduled = 0;  // requests due for this connection before `end`
  while (due_of(scheduled) < end) ++scheduled;
  // Requests j.. that are lost: only those due in the measured window count as errors.
  auto lose_from = [&](std::uint64_t j) {
    for (; j < scheduled; ++j)
      if (due_of(j) >= measure_from) ++t.errors;
  };

  weft::net::tcp_stream s;
  std::error_code ec;
  s = weft::net::tcp_stream::connect(addr, 5s, ec);
  if (ec) {
    ++t.connect_errors;
    lose_from(0);
    return;
  }
  s.set_read_deadline(end + 2s);  // a request unanswered by then counts as an error
  s.set_write_deadline(end + 2s);
  const std::string request = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\n\r\n";
  std::string buf;
  for (std::uint64_t j = 0; j < scheduled; ++j) {
    const auto due = due_of(j);
    if (steady::now() < due) weft::sleep_until(due);
    const auto sent = steady::now();
    if (s.write_all(request, ec), ec || !read_response(s, buf, t)) {
      lose_from(j);
      return;
    }
    const auto latency = steady::now() - due;
    if (due < measure_from) {
      ++t.warmup_ok;
      continue;
    }
    h.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count()));
    lag.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(sent - due).count()));
    turnaround.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(due + latency - sent).count()));
    ++t.ok;
  }
}

double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

}  // namespace

// Asks the kernel (EEVDF, Linux 6.12+) for a short time slice for this thread and the threads it
// starts: when the server saturates every core, the generator's wake-ups then preempt it
// promptly, so measured latency is the server's, not the generator's wait for a CPU. It changes
// nothing for the server; on older kernels the call fails and nothing changes.
void request_short_slice() {
  struct {
    std::uint32_t size, policy;
    std::uint64_t flags;
    std::int32_t nice;
    std::uint32_t priority;
    std::uint64_t runtime, deadline, period;
  } attr{};
  attr.size = sizeof attr;
  attr.policy = 0;         // SCHED_OTHER
  attr.runtime = 100'000;  // ns: the slice
  syscall(SYS_sched_setattr, 0, &attr, 0);
}

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  request_short_slice();
  weft::config cfg;
  cfg.workers = o.workers;
  static loadgen::histogram h;    // ~26 KiB of counters: not on a green thread's stack
  static loadgen::histogram lag;  // how late each counted request went out: the generator's delay
  static loadgen::histogram turnaround;  // from sending a request to reading its answer
  totals t;
  return weft::run(
      [&] {
        const auto addr = weft::net::address::parse(o.host + ":" + std::to_string(o.port));
        const auto start = steady::now() + 500ms;  // time to open the connections
        const auto measure_from = start + std::chrono::duration_cast<steady::duration>(
                                              std::chrono::duration<double>(o.warmup_s));
        const auto end = measure_from + std::chrono::duration_cast<steady::duration>(
                                            std::chrono::duration<double>(o.duration_s));
        weft::wait_group wg;
        wg.add(static_cast<int>(o.connections));
        for (unsigned k = 0; k < o.connections; ++k) {
          weft::go([&, k] {
            run_connection(o, addr, k, start, measure_from, end, h, lag, turnaround, t);
            wg.done();
          });
        }
        wg.wait();
        const double measured_s = o.duration_s;
        const std::uint64_t errors = t.errors.load();
        std::printf("loadgen: %.0f req/s over %u connections, %.1f s measured (+%.1f s warm-up)\n",
                    o.rate, o.connections, measured_s, o.warmup_s);
        std::printf("  answered %llu (%.0f/s), errors %llu (connect %llu, bad %llu)\n",
                    static_cast<unsigned long long>(t.ok.load()),
                    static_cast<double>(t.ok.load()) / measured_s,
                    static_cast<unsigned long long>(errors),
                    static_cast<unsigned long long>(t.connect_errors.load()),
                    static_cast<unsigned long long>(t.bad_responses.load()));
        std::printf(
            "  latency ms: p50 %.3f  p90 %.3f  p95 %.3f  p99 %.3f  p99.9 %.3f  "
            "p99.99 %.3f  max %.3f\n",
            ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.95)), ms(h.quantile(0.99)),
            ms(h.quantile(0.999)), ms(h.quantile(0.9999)), ms(h.max()));
        std::printf("  sent late by (ms): p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
                    ms(lag.quantile(0.5)), ms(lag.quantile(0.99)), ms(lag.quantile(0.999)),
                    ms(lag.max()));
        std::printf("  answered after sent (ms): p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
                    ms(turnaround.quantile(0.5)), ms(turnaround.quantile(0.99)),
                    ms(turnaround.quantile(0.999)), ms(turnaround.max()));
        std::printf(
            "loadgen rate=%.0f connections=%u ok=%llu errors=%llu p50_ms=%.3f p90_ms=%.3f "
            "p95_ms=%.3f p99_ms=%.3f p999_ms=%.3f p9999_ms=%.3f max_ms=%.3f "
            "late_p99_ms=%.3f late_p999_ms=%.3f\n",
            o.rate, o.connections, static_cast<unsigned long long>(t.ok.load()),
            static_cast<unsigned long long>(errors), ms(h.quantile(0.5)), ms(h.quantile(0.9)),
            ms(h.quantile(0.95)), ms(h.quantile(0.99)), ms(h.quantile(0.999)),
            ms(h.quantile(0.9999)), ms(h.max()), ms(lag.quantile(0.99)), ms(lag.quantile(0.999)));
        return errors == 0 ? 0 : 1;
      },
      cfg);
}
