// The OS-thread and oneTBB peers of the micro benchmarks: the same shapes as
// bench/micro_runtime.cpp and bench/micro_channels.cpp, done the way a C++ program without green
// threads would (a std::thread per task, blocking queues, tbb::task_group). Prints one line per
// run, "<shape> peer=<threads|tbb> ns_per_op=<x>", for tools/bench_report.py.
//   thread_peers [--runs N] [--only shape,shape]
// Shapes with no sensible peer of a kind (select on OS threads, a parked TBB task) are absent.
#include <sched.h>
#include <tbb/concurrent_queue.h>
#include <tbb/task_group.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fib_kernel.hpp"
#include "proc_status.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Context switch: two threads on one core handing the core to each other with sched_yield, the
// OS's own yield (ns per yield).
double yield_threads(std::int64_t per_thread) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  auto body = [&] {
    sched_setaffinity(0, sizeof one, &one);
    for (std::int64_t i = 0; i < per_thread; ++i) sched_yield();
  };
  const auto t0 = clock_type::now();
  std::thread a(body), b(body);
  a.join();
  b.join();
  return seconds_since(t0) * 1e9 / static_cast<double>(2 * per_thread);
}

// Creation: a thread per task, started and finished (ns per task).
double spawn_threads(std::int64_t n) {
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n));
  const auto t0 = clock_type::now();
  for (std::int64_t i = 0; i < n; ++i) threads.emplace_back([] {});
  for (auto& t : threads) t.join();
  return seconds_since(t0) * 1e9 / static_cast<double>(n);
}

double spawn_tbb(std::int64_t n) {
  tbb::task_group group;
  std::atomic<std::int64_t> done{0};
  const auto t0 = clock_type::now();
  for (std::int64_t i = 0; i < n; ++i)
    group.run([&] { done.fetch_add(1, std::memory_order_relaxed); });
  group.wait();
  if (done != n) std::abort();
  return seconds_since(t0) * 1e9 / static_cast<double>(n);
}

// Wake-up: a baton through a mutex and condition variable between two threads (ns per round
// trip), the shape of micro_runtime's wakeup.
double wakeup_threads(std::int64_t rounds) {
  std::mutex m;
  std::condition_variable cv;
  std::int64_t turn = 0;
  auto side = [&](int me) {
    std::unique_lock lock(m);
    for (std::int64_t i = 0; i < rounds; ++i) {
      cv.wait(lock, [&] { return turn % 2 == me; });
      ++turn;
      cv.notify_one();
    }
  };
  const auto t0 = clock_type::now();
  std::thread a(side, 0), b(side, 1);
  a.join();
  b.join();
  return seconds_since(t0) * 1e9 / static_cast<double>(rounds);
}

// A bounded blocking queue of mutex + condition variables: what C++ programs write by hand.
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
    const std::int64_t v = items.front();
    items.pop_front();
    not_full.notify_one();
    return v;
  }
};

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

// Ping-pong: a value there and back through two one-slot queues (ns per round trip).
template <class Queue>
double pingpong(std::int64_t rounds) {
  Queue ping(1), pong(1);
  const auto t0 = clock_type::now();
  std::thread echo([&] {
    for (std::int64_t i = 0; i < rounds; ++i) pong.push(ping.pop());
  });
  for (std::int64_t i = 0; i < rounds; ++i) {
    ping.push(i);
    if (pong.pop() != i) std::abort();
  }
  echo.join();
  return seconds_since(t0) * 1e9 / static_cast<double>(rounds);
}

// MPMC: 4 producer and 4 consumer threads through capacity 1024 (ns per message).
template <class Queue>
double mpmc(std::int64_t n) {
  constexpr int producers = 4, consumers = 4;
  Queue q(1024);
  std::atomic<std::int64_t> sum{0};
  const auto t0 = clock_type::now();
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&] {
      for (std::int64_t i = 0; i < n / producers; ++i) q.push(i);
    });
  for (int c = 0; c < consumers; ++c)
    threads.emplace_back([&] {
      std::int64_t local = 0;
      for (std::int64_t i = 0; i < n / consumers; ++i) local += q.pop();
      sum += local;
    });
  for (auto& t : threads) t.join();
  const double ns = seconds_since(t0) * 1e9 / static_cast<double>(n);
  if (sum != producers * ((n / producers) * (n / producers - 1) / 2)) std::abort();
  return ns;
}

using weft_bench::serial_fib;

// Fork-join fib(35) with a task per call above 20, as in micro_runtime (ns per whole fib).
std::int64_t fib_threads(int n) {
  if (n <= 20) return serial_fib(n);
  std::int64_t left = 0;
  std::thread t([&] { left = fib_threads(n - 1); });
  const std::int64_t right = fib_threads(n - 2);
  t.join();
  return left + right;
}

std::int64_t fib_tbb(int n) {
  if (n <= 20) return serial_fib(n);
  std::int64_t left = 0;
  tbb::task_group group;
  group.run([&] { left = fib_tbb(n - 1); });
  const std::int64_t right = fib_tbb(n - 2);
  group.wait();
  return left + right;
}

template <class Fib>
double fib(Fib f) {
  const auto t0 = clock_type::now();
  if (f(35) != 9227465) std::abort();
  return seconds_since(t0) * 1e9;
}

// Memory per task: `n` threads blocked at once on a condition variable, then released. Prints
// the same fields as bench/park_million.
void park_threads(long n) {
  const long rss_before = weft_bench::status_kib("VmRSS:");
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  long waiting = 0;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n));
  const auto t0 = clock_type::now();
  for (long i = 0; i < n; ++i)
    threads.emplace_back([&] {
      std::unique_lock lock(m);
      ++waiting;
      cv.notify_all();
      cv.wait(lock, [&] { return open; });
    });
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return waiting == n; });
  }
  const double spawn_park = seconds_since(t0);
  const long rss_peak = weft_bench::status_kib("VmRSS:");
  const long pte = weft_bench::status_kib("VmPTE:");
  const auto t1 = clock_type::now();
  {
    std::lock_guard lock(m);
    open = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  std::printf(
      "park threads count=%ld spawn_park_s=%.3f release_s=%.3f rss_kib_per=%.2f pte_kib_per=%.2f\n",
      n, spawn_park, seconds_since(t1),
      static_cast<double>(rss_peak - rss_before) / static_cast<double>(n),
      static_cast<double>(pte) / static_cast<double>(n));
}

struct shape {
  const char* name;
  const char* peer;
  std::function<double()> run;
};

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  std::string only;
  long park_count = 10'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--runs") == 0) runs = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
    if (std::strcmp(argv[i], "--park") == 0) park_count = std::atol(argv[i + 1]);
  }
  const shape shapes[] = {
      {"yield", "threads", [] { return yield_threads(200'000); }},
      {"spawn_complete", "threads", [] { return spawn_threads(2'000); }},
      {"spawn_complete", "tbb", [] { return spawn_tbb(1'000'000); }},
      {"wakeup", "threads", [] { return wakeup_threads(20'000); }},
      {"pingpong", "threads", [] { return pingpong<mutex_queue>(20'000); }},
      {"pingpong", "tbb", [] { return pingpong<tbb_queue>(20'000); }},
      {"mpmc", "threads", [] { return mpmc<mutex_queue>(2'000'000); }},
      {"mpmc", "tbb", [] { return mpmc<tbb_queue>(2'000'000); }},
      {"fib", "threads", [] { return fib(fib_threads); }},
      {"fib", "tbb", [] { return fib(fib_tbb); }},
  };
  auto wanted = [&](const char* name) {
    return only.empty() ||
           ("," + only + ",").find(std::string(",") + name + ",") != std::string::npos;
  };
  for (const shape& s : shapes) {
    if (!wanted(s.name)) continue;
    s.run();  // warm-up: thread stacks cached by glibc, TBB's workers started
    for (int r = 0; r < runs; ++r)
      std::printf("%s peer=%s ns_per_op=%.1f\n", s.name, s.peer, s.run());
    std::fflush(stdout);
  }
  if (wanted("park")) park_threads(park_count);
}
