// Stackless tasks: values and exceptions through co_await and join, tasks awaiting tasks, tasks,
// green threads and OS threads on one channel (every value received exactly once), sleep and
// yield, cancellation, many parked tasks released exactly once, the end of weft::run, and the
// error for a blocking call inside a task.
#include <atomic>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;

class task_test : public weft_test::workers {};
WEFT_WORKER_COUNTS(task_test);

weft::task<int> answer() {
  co_return 42;
}

weft::task<int> add_answers(int n) {
  int total = 0;
  for (int i = 0; i < n; ++i) total += co_await answer();
  co_return total;
}

weft::task<void> fail_after_await() {
  co_await weft::async_yield();
  throw std::runtime_error("task failed");
}

weft::task<std::string> catch_child_failure() {
  try {
    co_await fail_after_await();
  } catch (const std::runtime_error& e) {
    co_return std::string("caught: ") + e.what();
  }
  co_return "not thrown";
}

TEST_P(task_test, values_and_exceptions_come_out_of_co_await_and_join) {
  weft::run(
      [] {
        EXPECT_EQ(weft::spawn(answer()).join(), 42);
        EXPECT_EQ(weft::spawn(add_answers(1000)).join(), 42'000);
        EXPECT_EQ(weft::spawn(catch_child_failure()).join(), "caught: task failed");
        auto failing = weft::spawn(fail_after_await());
        EXPECT_THROW(failing.join(), std::runtime_error);
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

weft::task<void> produce(weft::chan<int> out, int first, int count) {
  for (int i = first; i < first + count; ++i) co_await out.async_send(std::move(i));
}

weft::task<long> consume(weft::chan<int> in, std::vector<std::atomic<int>>* seen) {
  long n = 0;
  while (auto v = co_await in.async_recv()) {
    (*seen)[static_cast<std::size_t>(*v)].fetch_add(1);
    ++n;
  }
  co_return n;
}

// 16 producers and 16 consumers on one channel, each side a mix of tasks, green threads and
// OS threads: every value is received exactly once.
TEST_P(task_test, tasks_green_threads_and_os_threads_share_a_channel_exactly_once) {
  static constexpr int per_producer = weft_test::sanitized ? 500 : 5'000;
  static constexpr int sides = 16;
  std::vector<std::atomic<int>> seen(sides * per_producer);
  weft::run(
      [&] {
        for (std::size_t capacity : {std::size_t{0}, std::size_t{64}}) {
          for (auto& s : seen) s = 0;
          weft::chan<int> ch(capacity);
          std::vector<weft::join_handle<void>> producers;
          std::vector<weft::join_handle<long>> consumers;
          std::vector<std::thread> os_threads;
          std::atomic<long> os_received{0};
          for (int p = 0; p < sides; ++p) {
            const int first = p * per_producer;
            if (p % 3 == 0) {
              producers.push_back(weft::spawn(produce(ch, first, per_producer)));
            } else if (p % 3 == 1) {
              producers.push_back(weft::spawn([ch, first]() mutable {
                for (int i = first; i < first + per_producer; ++i) ch.send(i);
              }));
            } else {
              os_threads.emplace_back([ch, first]() mutable {
                for (int i = first; i < first + per_producer; ++i) ch.send(i);
              });
            }
          }
          for (int c = 0; c < sides; ++c) {
            if (c % 3 == 0) {
              consumers.push_back(weft::spawn(consume(ch, &seen)));
            } else if (c % 3 == 1) {
              consumers.push_back(weft::spawn([ch, &seen]() mutable {
                long n = 0;
                while (auto v = ch.recv()) {
                  seen[static_cast<std::size_t>(*v)].fetch_add(1);
                  ++n;
                }
                return n;
              }));
            } else {
              os_threads.emplace_back([ch, &seen, &os_received]() mutable {
                while (auto v = ch.recv()) {
                  seen[static_cast<std::size_t>(*v)].fetch_add(1);
                  os_received.fetch_add(1);
                }
              });
            }
          }
          for (auto& p : producers) p.join();
          weft::blocking([&] {  // the OS-thread producers, which come first in os_threads
            for (int p = 0, t = 0; p < sides; ++p)
              if (p % 3 == 2) os_threads[static_cast<std::size_t>(t++)].join();
          });
          ch.close();
          long received = 0;
          for (auto& c : consumers) received += c.join();
          weft::blocking([&] {
            for (auto& t : os_threads)
              if (t.joinable()) t.join();
          });
          received += os_received.load();
          EXPECT_EQ(received, sides * per_producer);
          long total = 0;
          for (auto& s : seen) {
            EXPECT_EQ(s.load(), 1);
            total += s.load();
          }
          EXPECT_EQ(total, sides * per_producer);
        }
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

weft::task<void> bounce(weft::chan<int> in, weft::chan<int> out, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    auto v = co_await in.async_recv();
    if (!v) throw std::logic_error("closed early");
    co_await out.async_send(*v + 1);
  }
}

TEST_P(task_test, ping_pong_task_to_task_and_task_to_green_thread) {
  static constexpr int rounds = weft_test::sanitized ? 2'000 : 50'000;
  weft::run(
      [] {
        // task <-> task: a second task serves the first.
        weft::chan<int> a(0), b(0);
        auto server = weft::spawn(bounce(a, b, rounds));
        auto client = weft::spawn([](weft::chan<int> to, weft::chan<int> from) -> weft::task<int> {
          int v = 0;
          for (int i = 0; i < rounds; ++i) {
            co_await to.async_send(std::move(v));
            v = *co_await from.async_recv();
          }
          co_return v;
        }(a, b));
        EXPECT_EQ(client.join(), rounds);
        server.join();

        // task <-> green thread (this one).
        auto task_side = weft::spawn(bounce(a, b, rounds));
        int v = 0;
        for (int i = 0; i < rounds; ++i) {
          a.send(v);
          v = *b.recv();
        }
        EXPECT_EQ(v, rounds);
        task_side.join();
      },
      cfg());
}

TEST_P(task_test, sleep_never_ends_early_and_yield_lets_others_run) {
  weft::run(
      [] {
        auto h = weft::spawn([]() -> weft::task<long> {
          const auto t0 = std::chrono::steady_clock::now();
          co_await weft::async_sleep_for(5ms);
          co_return std::chrono::duration_cast<std::chrono::microseconds>(
              std::chrono::steady_clock::now() - t0)
              .count();
        }());
        EXPECT_GE(h.join(), 5'000);

        // Two tasks taking turns by yielding, on any number of workers: both finish.
        std::atomic<int> turns{0};
        auto spin = [](std::atomic<int>* t) -> weft::task<void> {
          for (int i = 0; i < 1000; ++i) {
            t->fetch_add(1);
            co_await weft::async_yield();
          }
        };
        auto x = weft::spawn(spin(&turns));
        auto y = weft::spawn(spin(&turns));
        x.join();
        y.join();
        EXPECT_EQ(turns.load(), 2000);
      },
      cfg());
}

TEST_P(task_test, a_parked_task_is_cancelled_and_the_error_code_form_returns) {
  weft::run(
      [] {
        weft::chan<int> never(0);
        auto throwing = weft::spawn(
            [](weft::chan<int> ch) -> weft::task<void> { (void)co_await ch.async_recv(); }(never));
        auto quiet = weft::spawn([](weft::chan<int> ch) -> weft::task<int> {
          std::error_code ec;
          auto v = co_await ch.async_recv(ec);
          EXPECT_FALSE(v.has_value());
          co_return ec == std::errc::operation_canceled ? 7 : -1;
        }(never));
        auto sender = weft::spawn([](weft::chan<int> ch) -> weft::task<int> {
          auto value = std::make_unique<int>(5);
          int kept = 0;
          weft::chan<std::unique_ptr<int>> nobody(0);
          try {
            co_await nobody.async_send(std::move(value));
          } catch (const weft::cancelled&) {
            kept = value ? *value : -1;  // not sent: still ours
          }
          (void)ch;
          co_return kept;
        }(never));
        auto sleeper =
            weft::spawn([]() -> weft::task<void> { co_await weft::async_sleep_for(1h); }());
        weft_test::wait_until_parked(4);
        throwing.cancel();
        quiet.cancel();
        sender.cancel();
        sleeper.cancel();
        EXPECT_THROW(throwing.join(), weft::cancelled);
        EXPECT_EQ(quiet.join(), 7);
        EXPECT_EQ(sender.join(), 5);
        EXPECT_THROW(sleeper.join(), weft::cancelled);
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

TEST_P(task_test, many_parked_tasks_are_released_exactly_once) {
  static constexpr int n = weft_test::sanitized ? 100'000 : 1'000'000;
  weft::run(
      [] {
        weft::chan<int> in(0);
        weft::chan<int> out(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
          weft::go([](weft::chan<int> from, weft::chan<int> to) -> weft::task<void> {
            auto v = co_await from.async_recv();
            co_await to.async_send(*v * 2);
          }(in, out));
        }
        weft_test::wait_until_parked(static_cast<std::uint64_t>(n));
        EXPECT_EQ(weft::stats().tasks_live, static_cast<std::uint64_t>(n));
        EXPECT_EQ(weft::stats().tasks_created, static_cast<std::uint64_t>(n));
        for (int i = 0; i < n; ++i) in.send(i);
        std::vector<int> got(static_cast<std::size_t>(n), 0);
        for (int i = 0; i < n; ++i) {
          const int v = *out.recv();
          ASSERT_EQ(v % 2, 0);
          ++got[static_cast<std::size_t>(v / 2)];
        }
        for (int c : got) EXPECT_EQ(c, 1);
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
  EXPECT_EQ(weft::stats().tasks_live, 0u);
}

TEST_P(task_test, the_end_of_run_unwinds_suspended_tasks_and_destroys_unstarted_ones) {
  std::atomic<int> unwound{0};
  struct count_unwind {  // counts its destruction once, wherever it was moved to
    std::atomic<int>* n;
    explicit count_unwind(std::atomic<int>* c) : n(c) {}
    count_unwind(count_unwind&& o) noexcept : n(std::exchange(o.n, nullptr)) {}
    ~count_unwind() {
      if (n) n->fetch_add(1);
    }
  };
  weft::run(
      [&] {
        weft::chan<int> never(0);
        for (int i = 0; i < 10; ++i) {
          weft::go([](weft::chan<int> ch, std::atomic<int>* n) -> weft::task<void> {
            count_unwind guard(n);
            (void)co_await ch.async_recv();
            ADD_FAILURE() << "a never-fed receive returned";
          }(never, &unwound));
        }
        weft_test::wait_until_parked(10);
        // Started last: may not have run when main returns, and is then destroyed unrun (its
        // parameters are destroyed with its frame either way).
        weft::go([](count_unwind) -> weft::task<void> { co_return; }(count_unwind(&unwound)));
      },
      cfg());
  EXPECT_EQ(unwound.load(), 11);
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

weft::task<int> join_both(weft::join_handle<int> green, weft::join_handle<int> other) {
  const int a = co_await std::move(green);
  const int b = co_await std::move(other);
  co_return a + b;
}

TEST_P(task_test, a_task_joins_green_threads_and_tasks) {
  weft::run(
      [] {
        weft::chan<int> gate(0);
        auto green = weft::spawn([gate]() mutable { return *gate.recv() + 1; });
        auto other = weft::spawn([](weft::chan<int> g) -> weft::task<int> {
          co_return *co_await g.async_recv() * 10;
        }(gate));
        auto joiner = weft::spawn(join_both(std::move(green), std::move(other)));
        weft_test::wait_until_parked(3);  // the joiner waits in its join
        gate.send(1);
        gate.send(2);
        const int got = joiner.join();
        EXPECT_TRUE(got == 1 + 1 + 2 * 10 || got == 2 + 1 + 1 * 10) << got;

        // A failure comes out of the co_await; a cancelled join throws weft::cancelled.
        auto failing = weft::spawn([]() -> weft::task<int> {
          throw std::runtime_error("inner");
          co_return 0;
        }());
        auto rethrows = weft::spawn([](weft::join_handle<int> h) -> weft::task<bool> {
          try {
            (void)co_await std::move(h);
          } catch (const std::runtime_error&) {
            co_return true;
          }
          co_return false;
        }(std::move(failing)));
        EXPECT_TRUE(rethrows.join());
        weft::chan<int> never(0);
        auto stuck = weft::spawn([never]() mutable { return never.recv().value_or(0); });
        auto waiting = weft::spawn([](weft::join_handle<int> h) -> weft::task<int> {
          co_return co_await std::move(h);
        }(std::move(stuck)));
        weft_test::wait_until_parked(2);
        waiting.cancel();
        EXPECT_THROW(waiting.join(), weft::cancelled);
        never.close();  // the green thread it waited for ends too
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

TEST_P(task_test, a_task_waits_on_a_wait_group) {
  weft::run(
      [] {
        weft::wait_group wg(3);
        std::atomic<int> done{0};
        auto waiter = weft::spawn([](weft::wait_group* g, std::atomic<int>* d) -> weft::task<int> {
          co_await g->async_wait();
          co_return d->load();
        }(&wg, &done));
        weft_test::wait_until_parked(1);
        for (int i = 0; i < 3; ++i) {
          weft::go([&] {
            done.fetch_add(1);
            wg.done();
          });
        }
        EXPECT_EQ(waiter.join(), 3);  // it woke only after the last done()

        weft::wait_group never(1);
        auto cancelled = weft::spawn(
            [](weft::wait_group* g) -> weft::task<void> { co_await g->async_wait(); }(&never));
        weft_test::wait_until_parked(1);
        cancelled.cancel();
        EXPECT_THROW(cancelled.join(), weft::cancelled);
        never.done();  // a release after a waiter departed touches nothing of it
        never.wait();
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

weft::task<std::size_t> select_one(weft::chan<int> a, weft::chan<int> b, int* got) {
  co_return co_await weft::async_select(
      weft::on_recv(a, [got](std::optional<int> v) { *got = *v; }),
      weft::on_recv(b, [got](std::optional<int> v) { *got = -*v; }));
}

TEST_P(task_test, async_select_waits_for_the_first_case_and_runs_only_it) {
  weft::run(
      [] {
        weft::chan<int> a(0), b(0), never(0);
        int got = 0;
        auto h = weft::spawn(select_one(a, b, &got));
        weft_test::wait_until_parked(1);
        b.send(5);
        EXPECT_EQ(h.join(), 1u);
        EXPECT_EQ(got, -5);

        // A timeout, a default, a send, and a cancellation caught by on_cancelled.
        auto timed = weft::spawn([](weft::chan<int> n) -> weft::task<std::size_t> {
          co_return co_await weft::async_select(weft::on_recv(n, [](std::optional<int>) {}),
                                                weft::on_timeout(5ms, [] {}));
        }(never));
        EXPECT_EQ(timed.join(), 1u);
        auto polled = weft::spawn([](weft::chan<int> n) -> weft::task<std::size_t> {
          co_return co_await weft::async_select(weft::on_recv(n, [](std::optional<int>) {}),
                                                weft::on_default([] {}));
        }(never));
        EXPECT_EQ(polled.join(), 1u);
        auto sends = weft::spawn([](weft::chan<int> out) -> weft::task<std::size_t> {
          co_return co_await weft::async_select(weft::on_send(out, 7, [] {}));
        }(a));
        EXPECT_EQ(*a.recv(), 7);
        EXPECT_EQ(sends.join(), 0u);
        auto stopped = weft::spawn([](weft::chan<int> n) -> weft::task<std::size_t> {
          co_return co_await weft::async_select(weft::on_recv(n, [](std::optional<int>) {}),
                                                weft::on_cancelled([] {}));
        }(never));
        auto thrown = weft::spawn([](weft::chan<int> n) -> weft::task<std::size_t> {
          co_return co_await weft::async_select(weft::on_recv(n, [](std::optional<int>) {}));
        }(never));
        weft_test::wait_until_parked(2);
        stopped.cancel();
        thrown.cancel();
        EXPECT_EQ(stopped.join(), 1u);
        EXPECT_THROW(thrown.join(), weft::cancelled);
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

weft::task<long> select_drain(weft::chan<int> a, weft::chan<int> b,
                              std::vector<std::atomic<int>>* seen) {
  long n = 0;
  for (int open = 2; open > 0;) {
    std::optional<int> v;
    auto take = [&v](std::optional<int> x) { v = x; };
    const std::size_t i =
        co_await weft::async_select(weft::on_recv(a, take), weft::on_recv(b, take));
    if (!v) {
      --open;
      (i == 0 ? a : b) = weft::chan<int>();  // a nil channel: never chosen again
      continue;
    }
    (*seen)[static_cast<std::size_t>(*v)].fetch_add(1);
    ++n;
  }
  co_return n;
}

// Tasks in async_select and green threads in select drain two channels: every value once.
TEST_P(task_test, async_select_and_select_share_channels_exactly_once) {
  static constexpr int per_channel = weft_test::sanitized ? 1'000 : 20'000;
  std::vector<std::atomic<int>> seen(2 * per_channel);
  weft::run(
      [&] {
        weft::chan<int> a(0), b(16);
        std::vector<weft::join_handle<long>> drains;
        for (int i = 0; i < 4; ++i) drains.push_back(weft::spawn(select_drain(a, b, &seen)));
        for (int i = 0; i < 4; ++i) {
          drains.push_back(weft::spawn([a, b, &seen]() mutable {
            long n = 0;
            for (int open = 2; open > 0;) {
              std::optional<int> v;
              auto take = [&v](std::optional<int> x) { v = x; };
              const std::size_t i = weft::select(weft::on_recv(a, take), weft::on_recv(b, take));
              if (!v) {
                --open;
                (i == 0 ? a : b) = weft::chan<int>();
                continue;
              }
              seen[static_cast<std::size_t>(*v)].fetch_add(1);
              ++n;
            }
            return n;
          }));
        }
        auto feed = [](weft::chan<int> c, int first) {
          for (int i = first; i < first + per_channel; ++i) c.send(i);
          c.close();
        };
        auto fa = weft::spawn([=] { feed(a, 0); });
        auto fb = weft::spawn([=] { feed(b, per_channel); });
        fa.join();
        fb.join();
        long total = 0;
        for (auto& d : drains) total += d.join();
        EXPECT_EQ(total, 2 * per_channel);
        for (auto& v : seen) EXPECT_EQ(v.load(), 1);
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

TEST_P(task_test, a_blocking_wait_inside_a_task_is_a_logic_error) {
  weft::run(
      [] {
        weft::chan<int> empty(0);
        auto h = weft::spawn([](weft::chan<int> ch) -> weft::task<bool> {
          try {
            (void)ch.recv();  // would park a stack the task does not have
          } catch (const std::logic_error&) {
            co_return true;
          }
          co_return false;
        }(empty));
        EXPECT_TRUE(h.join());
      },
      cfg());
}

weft::task<void> add_under_lock(weft::mutex* m, long* counter, int times) {
  for (int i = 0; i < times; ++i) {
    co_await m->async_lock();
    const long v = *counter;
    co_await weft::async_yield();  // others run (and try the lock) inside the section
    *counter = v + 1;
    m->unlock();
  }
}

// Tasks (async_lock, yielding inside the section) and green threads (lock_guard) on one mutex:
// no increment is lost.
TEST_P(task_test, async_lock_excludes_tasks_and_green_threads_alike) {
  static constexpr int times = weft_test::sanitized ? 200 : 2'000;
  weft::run(
      [] {
        weft::mutex m;
        long counter = 0;
        std::vector<weft::join_handle<void>> all;
        for (int i = 0; i < 4; ++i) all.push_back(weft::spawn(add_under_lock(&m, &counter, times)));
        for (int i = 0; i < 4; ++i) {
          all.push_back(weft::spawn([&] {
            for (int k = 0; k < times; ++k) {
              std::lock_guard g(m);
              const long v = counter;
              weft::yield();
              counter = v + 1;
            }
          }));
        }
        for (auto& h : all) h.join();
        EXPECT_EQ(counter, 8L * times);
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

struct shared_queue {
  weft::mutex m;
  weft::condition_variable cv;
  std::vector<int> items;
  bool closed = false;
};

weft::task<long> take_all(shared_queue* q, std::vector<std::atomic<int>>* seen) {
  long n = 0;
  co_await q->m.async_lock();
  for (;;) {
    while (q->items.empty() && !q->closed) co_await q->cv.async_wait(q->m);
    if (q->items.empty()) break;
    const int v = q->items.back();
    q->items.pop_back();
    (*seen)[static_cast<std::size_t>(v)].fetch_add(1);
    ++n;
  }
  q->m.unlock();
  co_return n;
}

// Tasks wait on a condition variable that green threads notify: every item taken once; and a
// cancelled wait takes the mutex back before it throws.
TEST_P(task_test, condition_variable_async_wait_wakes_tasks_and_gives_the_lock_back) {
  static constexpr int items = weft_test::sanitized ? 2'000 : 20'000;
  std::vector<std::atomic<int>> seen(items);
  weft::run(
      [&] {
        shared_queue q;
        std::vector<weft::join_handle<long>> takers;
        for (int i = 0; i < 4; ++i) takers.push_back(weft::spawn(take_all(&q, &seen)));
        for (int i = 0; i < items; ++i) {
          {
            std::lock_guard g(q.m);
            q.items.push_back(i);
          }
          q.cv.notify_one();
          if (i % 64 == 0) weft::yield();
        }
        {
          std::lock_guard g(q.m);
          q.closed = true;
        }
        q.cv.notify_all();
        long total = 0;
        for (auto& t : takers) total += t.join();
        EXPECT_EQ(total, items);
        for (auto& v : seen) EXPECT_EQ(v.load(), 1);

        shared_queue idle;
        auto stuck = weft::spawn([](shared_queue* sq) -> weft::task<bool> {
          co_await sq->m.async_lock();
          try {
            co_await sq->cv.async_wait(sq->m);
          } catch (const weft::cancelled&) {
            const bool held = !sq->m.try_lock();  // taken back before the throw
            sq->m.unlock();
            co_return held;
          }
          co_return false;
        }(&idle));
        weft_test::wait_until_parked(1);
        stuck.cancel();
        EXPECT_TRUE(stuck.join());
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

TEST_P(task_test, dumps_list_parked_tasks_with_their_wait) {
  weft::run(
      [] {
        weft::chan<int> never(0);
        auto h = weft::spawn(
            [](weft::chan<int> ch) -> weft::task<void> { (void)co_await ch.async_recv(); }(never));
        weft_test::wait_until_parked(1);
        std::ostringstream out;
        weft::dump(out);
        EXPECT_TRUE(out.str().find("task ") != std::string::npos &&
                    out.str().find("[chan receive") != std::string::npos)
            << out.str();
        never.close();
        h.join();
      },
      cfg());
}

TEST(task_death, an_uncaught_exception_names_the_task) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(weft::run([] {
                 weft::go([]() -> weft::task<void> {
                   co_await weft::async_yield();
                   throw std::runtime_error("kaput");
                 }());
                 weft::sleep_for(std::chrono::seconds(5));
               }),
               "uncaught exception in task [0-9]+: .*kaput");
}

}  // namespace
