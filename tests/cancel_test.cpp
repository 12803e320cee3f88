// Cancellation: every cancellable wait cancelled before and during the wait, error_code
// overloads (the channels' no-throw forms and select's on_cancelled too), the race with completion
// counted exactly once, scopes (nesting, the first error, deadlines), cancel_shield, stop tokens,
// cancel from OS threads, 100K parked green threads cancelled at once, and an HTTP handler whose
// client leaves.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using weft::net::tcp_listener;
using weft::net::tcp_stream;

class cancel_test : public weft_test::workers {};
WEFT_WORKER_COUNTS(cancel_test);

// Waits (without parking forever) until `n` green threads besides the caller are parked.
void await_parked(std::uint64_t n) {
  while (weft::stats().parked < n) weft::sleep_for(100us);
}

// Runs `wait` on a green thread and cancels it before it reaches the wait (`before`) or once it
// is parked in it; join() must then throw weft::cancelled, after `wait` threw it.
template <class Setup>
void expect_cancellable(const weft::config& cfg, Setup setup, bool before) {
  weft::run(
      [&] {
        std::atomic<bool> go_on{false}, threw{false};
        auto wait = setup();
        auto h = weft::spawn([&] {
          while (!go_on.load()) weft::yield();  // yield is no wait: not cancelled here
          try {
            wait();
          } catch (const weft::cancelled&) {
            threw = true;
            throw;
          }
        });
        if (before) {
          h.cancel();
          go_on = true;
        } else {
          go_on = true;
          await_parked(1);
          weft::sleep_for(10ms);  // past short waits on the way (a connect's own handshake)
          await_parked(1);
          h.cancel();
        }
        EXPECT_THROW(h.join(), weft::cancelled);
        EXPECT_TRUE(threw.load());
      },
      cfg);
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

template <class Setup>
void expect_cancellable_before_and_during(const weft::config& cfg, Setup setup) {
  expect_cancellable(cfg, setup, false);
  expect_cancellable(cfg, setup, true);
}

// Each wait kind, as a factory of the waiting call (state shared through a shared_ptr so the
// call outlives the factory).
auto recv_wait() {
  return [] { return [ch = weft::chan<int>(0)]() mutable { (void)ch.recv(); }; };
}
auto send_wait() {
  return [] { return [ch = weft::chan<int>(0)]() mutable { ch.send(1); }; };
}
auto select_wait() {
  return [] {
    return [a = weft::chan<int>(0), b = weft::chan<int>(1)]() mutable {
      int full = 0;
      b.send(0);  // b is full: its send case is never ready either
      weft::select(weft::on_recv(a, [](std::optional<int>) {}), weft::on_send(b, full, [] {}));
    };
  };
}
auto sleep_wait() {
  return [] { return [] { weft::sleep_for(1h); }; };
}
auto wait_group_wait() {
  return [] { return [wg = std::make_shared<weft::wait_group>(1)] { wg->wait(); }; };
}
auto join_wait() {
  return [] {
    return [] {
      weft::chan<int> never(0);
      auto inner = weft::spawn([never]() mutable { (void)never.recv(); });
      struct stop_inner {
        weft::join_handle<void>& h;
        weft::chan<int>& c;
        ~stop_inner() { c.close(); }
      } guard{inner, never};
      inner.join();
    };
  };
}

TEST_P(cancel_test, chan_recv) {
  expect_cancellable_before_and_during(cfg(), recv_wait());
}
TEST_P(cancel_test, chan_send) {
  expect_cancellable_before_and_during(cfg(), send_wait());
}
TEST_P(cancel_test, select_without_default) {
  expect_cancellable_before_and_during(cfg(), select_wait());
}
TEST_P(cancel_test, sleep) {
  expect_cancellable_before_and_during(cfg(), sleep_wait());
}
TEST_P(cancel_test, wait_group_wait) {
  expect_cancellable_before_and_during(cfg(), wait_group_wait());
}
TEST_P(cancel_test, join) {
  expect_cancellable_before_and_during(cfg(), join_wait());
}

TEST_P(cancel_test, condition_variable_wait_gives_the_lock_back_before_throwing) {
  for (const bool before : {false, true}) {
    expect_cancellable(
        cfg(),
        [] {
          return [] {
            weft::mutex m;
            weft::condition_variable cv;
            std::unique_lock lk(m);
            try {
              for (;;) cv.wait(lk);  // a wake-up may be spurious: only cancellation ends it
            } catch (const weft::cancelled&) {
              EXPECT_TRUE(lk.owns_lock());
              EXPECT_FALSE(m.try_lock());  // held by us again
              throw;
            }
          };
        },
        before);
  }
}

TEST_P(cancel_test, socket_read_write_and_accept) {
  // read: the peer never writes.
  for (const bool before : {false, true}) {
    expect_cancellable(
        cfg(),
        [] {
          return [] {
            tcp_listener l = tcp_listener::bind("127.0.0.1:0");
            tcp_stream c = tcp_stream::connect("127.0.0.1:" + std::to_string(l.port()));
            tcp_stream s = l.accept();
            char buf[16];
            (void)s.read(std::span<char>(buf));
          };
        },
        before);
    // write: the peer never reads, so the buffers fill up.
    expect_cancellable(
        cfg(),
        [] {
          return [] {
            tcp_listener l = tcp_listener::bind("127.0.0.1:0");
            tcp_stream c = tcp_stream::connect("127.0.0.1:" + std::to_string(l.port()));
            tcp_stream s = l.accept();
            const std::string chunk(1 << 20, 'x');
            for (;;) s.write_all(chunk);
          };
        },
        before);
    // accept: nobody connects.
    expect_cancellable(
        cfg(),
        [] {
          return [] {
            tcp_listener l = tcp_listener::bind("127.0.0.1:0");
            (void)l.accept();
          };
        },
        before);
  }
}

// connect: a listener whose accept queue is full drops new SYNs, so a connect to it waits
// (the kernel retries for a minute or more).
TEST_P(cancel_test, socket_connect) {
  for (const bool before : {false, true}) {
    expect_cancellable(
        cfg(),
        [] {
          return [] {
            const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            socklen_t len = sizeof a;
            ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), len), 0);
            ASSERT_EQ(::listen(lfd, 0), 0);
            ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len), 0);
            std::vector<tcp_stream> fillers;  // never accepted: they fill the queue
            struct close_fd {
              int fd;
              ~close_fd() { ::close(fd); }
            } guard{lfd};
            const std::string addr = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
            for (int i = 0; i < 2; ++i) fillers.push_back(tcp_stream::connect(addr));
            (void)tcp_stream::connect(addr);  // waits: its SYN is dropped
          };
        },
        before);
  }
}

TEST_P(cancel_test, error_code_overloads_report_operation_canceled) {
  weft::run(
      [] {
        tcp_listener l = tcp_listener::bind("127.0.0.1:0");
        tcp_stream c = tcp_stream::connect("127.0.0.1:" + std::to_string(l.port()));
        tcp_stream s = l.accept();
        std::error_code read_ec, accept_ec;
        auto h = weft::spawn([&] {
          char buf[16];
          EXPECT_EQ(s.read(std::span<char>(buf), read_ec), 0u);
          (void)l.accept(accept_ec);  // the request is sticky: this wait fails at once too
          return 5;
        });
        await_parked(1);
        h.cancel();
        EXPECT_EQ(h.join(), 5);  // it handled the error itself and returned
        EXPECT_EQ(read_ec, std::errc::operation_canceled);
        EXPECT_EQ(accept_ec, std::errc::operation_canceled);
      },
      cfg());
}

TEST_P(cancel_test, blocking_call_queued_never_runs_and_running_is_waited_for) {
  weft::config c = cfg();
  c.max_blocking_threads = 1;
  weft::run(
      [] {
        std::atomic<bool> first_started{false}, first_done{false}, second_ran{false};
        // The pool's only thread is busy with this one...
        auto first = weft::spawn([&] {
          weft::blocking([&] {
            first_started = true;
            std::this_thread::sleep_for(100ms);
            first_done = true;
          });
        });
        while (!first_started.load()) weft::sleep_for(100us);
        // ...so this one stays queued; cancelled there, it never runs.
        auto second = weft::spawn([&] { weft::blocking([&] { second_ran = true; }); });
        await_parked(2);
        second.cancel();
        EXPECT_THROW(second.join(), weft::cancelled);
        EXPECT_FALSE(second_ran.load());
        // Cancelled while running: its caller resumes only after the call, then throws.
        first.cancel();
        EXPECT_THROW(first.join(), weft::cancelled);
        EXPECT_TRUE(first_done.load());
        EXPECT_FALSE(second_ran.load());
      },
      c);
}

TEST_P(cancel_test, mutex_lock_is_not_cancelled_but_the_next_wait_is) {
  weft::run(
      [] {
        weft::mutex m;
        std::atomic<bool> locked{false};
        m.lock();
        auto h = weft::spawn([&] {
          m.lock();  // cancelled while queued here: it still gets the lock
          locked = true;
          m.unlock();
          weft::sleep_for(1h);  // the request waits for this wait
        });
        await_parked(1);
        h.cancel();
        weft::sleep_for(5ms);
        EXPECT_FALSE(locked.load());
        m.unlock();
        EXPECT_THROW(h.join(), weft::cancelled);
        EXPECT_TRUE(locked.load());
      },
      cfg());
}

TEST_P(cancel_test, a_green_thread_that_finished_first_keeps_its_result) {
  weft::run(
      [] {
        auto h = weft::spawn([] { return 42; });
        while (!h.is_finished()) weft::yield();
        h.cancel();
        EXPECT_EQ(h.join(), 42);
      },
      cfg());
}

// Cancel racing with a send: the value is received exactly once or stays with the sender.
// Lets the green threads spinning on `go_on` reach their wait, calling `cancel` before they do
// (`before`) or once `parked` of them are parked in it.
template <class Cancel>
void cancel_before_or_during(bool before, std::atomic<bool>& go_on, std::uint64_t parked,
                             Cancel cancel) {
  if (before) {
    cancel();
    go_on = true;
    return;
  }
  go_on = true;
  await_parked(parked);
  cancel();
}

// The channels' no-throw forms: a cancelled wait returns with operation_canceled and the green
// thread goes on (here it returns a value); a send keeps its value; close is broken_pipe.
TEST_P(cancel_test, channel_error_code_overloads_return_instead_of_throwing) {
  for (const bool before : {true, false}) {
    weft::run(
        [before] {
          weft::chan<std::unique_ptr<int>> empty(0), no_receiver(0);
          std::atomic<bool> go_on{false};
          auto receiver = weft::spawn([&, ch = empty]() mutable {
            while (!go_on.load()) weft::yield();
            std::error_code ec = std::make_error_code(std::errc::io_error);
            const bool got = ch.recv(ec).has_value();
            EXPECT_FALSE(got);
            EXPECT_EQ(ec, std::errc::operation_canceled);
            (void)ch.recv(ec);  // the request is sticky
            EXPECT_EQ(ec, std::errc::operation_canceled);
            return 7;
          });
          auto sender = weft::spawn([&, ch = no_receiver]() mutable {
            while (!go_on.load()) weft::yield();
            auto v = std::make_unique<int>(42);
            std::error_code ec;
            ch.send(std::move(v), ec);
            EXPECT_EQ(ec, std::errc::operation_canceled);
            EXPECT_NE(v, nullptr);  // not moved from: still the caller's
            return v ? *v : -1;
          });
          cancel_before_or_during(before, go_on, 2, [&] {
            receiver.cancel();
            sender.cancel();
          });
          EXPECT_EQ(receiver.join(), 7);
          EXPECT_EQ(sender.join(), 42);

          std::error_code ec = std::make_error_code(std::errc::io_error);
          weft::chan<std::unique_ptr<int>> buffered(1);
          buffered.send(std::make_unique<int>(1), ec);
          EXPECT_FALSE(ec);
          ec = std::make_error_code(std::errc::io_error);
          auto got = buffered.recv(ec);
          EXPECT_FALSE(ec);
          ASSERT_TRUE(got.has_value());
          EXPECT_EQ(**got, 1);
          buffered.close();
          auto kept = std::make_unique<int>(2);
          buffered.send(std::move(kept), ec);
          EXPECT_EQ(ec, std::errc::broken_pipe);
          ASSERT_NE(kept, nullptr);
          EXPECT_EQ(*kept, 2);
          EXPECT_FALSE(buffered.recv(ec).has_value());
          EXPECT_FALSE(ec);  // closed and drained is no error, as for recv()
        },
        cfg());
    EXPECT_EQ(weft::stats().green_threads_live, 0u);
  }
}

TEST_P(cancel_test, select_runs_on_cancelled_instead_of_throwing) {
  for (const bool before : {true, false}) {
    weft::run(
        [before] {
          weft::chan<int> never(0), ready(1);
          std::atomic<bool> go_on{false};
          auto h = weft::spawn([&]() {
            while (!go_on.load()) weft::yield();
            int ran = 0;
            const std::size_t i =
                weft::select(weft::on_recv(never, [&](std::optional<int>) { ran = 1; }),
                             weft::on_cancelled([&] { ran = 2; }));
            EXPECT_EQ(i, 1u);
            EXPECT_EQ(ran, 2);
            // A case ready at once wins over a pending request: that select does not wait.
            ready.send(5);
            int got = 0;
            EXPECT_EQ(weft::select(weft::on_recv(ready, [&](std::optional<int> v) { got = *v; }),
                                   weft::on_cancelled([] {})),
                      0u);
            EXPECT_EQ(got, 5);
            return ran;
          });
          cancel_before_or_during(before, go_on, 1, [&] { h.cancel(); });
          EXPECT_EQ(h.join(), 2);
        },
        cfg());
    EXPECT_EQ(weft::stats().green_threads_live, 0u);
  }
}

// The end of weft::run is not a request code may outlive: the no-throw forms unwind too.
TEST_P(cancel_test, the_end_of_run_unwinds_no_throw_waits_too) {
  std::atomic<int> unwound{0}, returned{0};
  weft::run(
      [&] {
        weft::chan<int> never(0);
        struct count_unwind {
          std::atomic<int>& n;
          ~count_unwind() { ++n; }
        };
        weft::go([&, never]() mutable {
          count_unwind guard{unwound};
          std::error_code ec;
          (void)never.recv(ec);
          ++returned;
        });
        weft::go([&, never]() mutable {
          count_unwind guard{unwound};
          weft::select(weft::on_recv(never, [](std::optional<int>) {}),
                       weft::on_cancelled([&] { ++returned; }));
          ++returned;
        });
        await_parked(2);
      },
      cfg());
  EXPECT_EQ(unwound.load(), 2);
  EXPECT_EQ(returned.load(), 0);
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

TEST_P(cancel_test, recv_racing_cancel_never_drops_a_value) {
  const int rounds = weft_test::sanitized ? 5'000 : 100'000;
  weft::run(
      [rounds] {
        int delivered = 0, received = 0, cancelled = 0;
        for (int i = 0; i < rounds; ++i) {
          weft::chan<int> ch(0);
          // Half the rounds wait in the no-throw recv: it must keep the same promise.
          auto r = weft::spawn([ch, i]() mutable {
            if (i % 2) return ch.recv().value_or(-1);
            std::error_code ec;
            std::optional<int> v = ch.recv(ec);
            if (ec) {
              EXPECT_EQ(ec, std::errc::operation_canceled);
              EXPECT_FALSE(v.has_value());
              throw weft::cancelled{};  // counted below as the throwing form's cancel
            }
            return v.value_or(-1);
          });
          std::atomic<int> sent{0};
          auto s = weft::spawn([ch, i, &sent]() mutable {
            try {
              ch.send(i);
              sent = 1;
            } catch (const weft::channel_closed&) {
            }
          });
          if (i % 3 != 0) weft::yield();  // vary who gets there first
          r.cancel();
          try {
            const int v = r.join();
            EXPECT_EQ(v, i);
            ++received;
          } catch (const weft::cancelled&) {
            ++cancelled;
          }
          ch.close();  // a sender still waiting gets channel_closed: not delivered
          s.join();
          delivered += sent.load();
        }
        EXPECT_EQ(delivered, received);
        EXPECT_EQ(received + cancelled, rounds);
      },
      cfg());
}

TEST_P(cancel_test, send_racing_cancel_keeps_an_undelivered_value_with_the_caller) {
  const int rounds = weft_test::sanitized ? 5'000 : 100'000;
  weft::run(
      [rounds] {
        int delivered = 0, kept = 0;
        for (int i = 0; i < rounds; ++i) {
          weft::chan<std::unique_ptr<int>> ch(0);
          std::atomic<int> outcome{0};  // 1 delivered, 2 kept by the sender
          auto s = weft::spawn([ch, i, &outcome]() mutable {
            auto v = std::make_unique<int>(i);
            try {
              ch.send(std::move(v));
              outcome = 1;
            } catch (const weft::cancelled&) {
              EXPECT_NE(v, nullptr);  // not moved from
              if (v) {
                EXPECT_EQ(*v, i);
              }
              outcome = 2;
            }
          });
          if (i % 2) weft::yield();
          s.cancel();
          auto got = ch.try_recv();
          s.join();
          if (outcome.load() == 1) {
            ++delivered;
            ASSERT_TRUE(got.has_value());
            EXPECT_EQ(**got, i);
          } else {
            EXPECT_EQ(outcome.load(), 2);
            EXPECT_FALSE(got.has_value());
            ++kept;
          }
        }
        EXPECT_EQ(delivered + kept, rounds);
      },
      cfg());
}

TEST_P(cancel_test, scope_joins_children_and_rethrows_the_first_error_after_cancelling_the_rest) {
  weft::run(
      [] {
        std::atomic<int> stopped{0};
        weft::chan<int> never(0);
        weft::scope s;
        for (int i = 0; i < 10; ++i)
          s.go([&, never]() mutable {
            try {
              (void)never.recv();
            } catch (const weft::cancelled&) {
              ++stopped;
              throw;
            }
          });
        s.go([] {
          weft::sleep_for(2ms);
          throw std::runtime_error("child failed");
        });
        try {
          s.wait();
          ADD_FAILURE() << "wait did not rethrow";
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "child failed");
        }
        EXPECT_EQ(stopped.load(), 10);
        EXPECT_EQ(s.active(), 0u);
        s.wait();  // the error was collected once
      },
      cfg());
}

TEST_P(cancel_test, nested_scopes_are_cancelled_from_the_outside_in) {
  weft::run(
      [] {
        std::atomic<int> inner_stopped{0}, outer_stopped{0};
        weft::scope outer;
        for (int i = 0; i < 4; ++i)
          outer.go([&] {
            weft::scope inner;
            for (int j = 0; j < 5; ++j)
              inner.go([&] {
                try {
                  weft::sleep_for(1h);
                } catch (const weft::cancelled&) {
                  ++inner_stopped;
                  throw;
                }
              });
            try {
              inner.wait();
            } catch (const weft::cancelled&) {
              ++outer_stopped;
              throw;
            }
          });
        await_parked(24);
        outer.cancel();
        outer.wait();  // cancelled on request: no error
        EXPECT_EQ(outer_stopped.load(), 4);
        EXPECT_EQ(inner_stopped.load(), 20);
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

TEST_P(cancel_test, a_child_started_in_a_cancelled_scope_is_cancelled_at_its_first_wait) {
  weft::run(
      [] {
        std::atomic<int> ran{0};
        weft::scope s;
        s.cancel();
        s.go([&] {
          ++ran;
          weft::sleep_for(1h);
          ADD_FAILURE() << "slept through a cancelled scope";
        });
        s.wait();
        EXPECT_EQ(ran.load(), 1);
      },
      cfg());
}

TEST_P(cancel_test, scope_destructor_cancels_and_joins_what_is_left) {
  std::atomic<int> stopped{0};
  weft::run(
      [&] {
        weft::chan<int> never(0);
        {
          weft::scope s;
          for (int i = 0; i < 50; ++i)
            s.go([&, never]() mutable {
              struct count_on_exit {
                std::atomic<int>& n;
                ~count_on_exit() { ++n; }
              } c{stopped};
              (void)never.recv();
            });
          await_parked(50);
        }  // ~scope
        EXPECT_EQ(stopped.load(), 50);
      },
      cfg());
}

// The end of weft::run unwinds a green thread waiting on a scope whose children never started:
// each unstarted child still reports its end, so the scope's destructor does not wait forever
// (it once did: the owner parked again while being unwound and was leaked).
TEST_P(cancel_test, the_end_of_run_unwinds_a_scope_whose_children_never_started) {
  constexpr int children = weft_test::thread_sanitized ? 200 : 1000;  // TSan: 1 ms per fiber
  std::atomic<int> owners_unwound{0}, started{0};
  weft::run(
      [&] {
        std::atomic<bool> scope_filled{false};
        weft::go([&] {
          struct count_on_exit {
            std::atomic<int>& n;
            ~count_on_exit() { ++n; }
          } c{owners_unwound};
          weft::scope s;
          for (int i = 0; i < children; ++i)
            s.go([&] {
              ++started;
              weft::sleep_for(1h);
            });
          scope_filled = true;
          s.wait();
        });
        while (!scope_filled) weft::yield();
      },
      cfg());
  EXPECT_EQ(owners_unwound.load(), 1);
  EXPECT_LE(started.load(), children);
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

TEST_P(cancel_test, scope_deadline_bounds_children_and_the_creators_own_waits) {
  weft::run(
      [] {
        weft::chan<int> never(0);
        {
          const auto start = std::chrono::steady_clock::now();
          weft::scope s(20ms);
          std::atomic<int> stopped{0};
          for (int i = 0; i < 3; ++i)
            s.go([&, never]() mutable {
              try {
                (void)never.recv();
              } catch (const weft::cancelled&) {
                ++stopped;
                throw;
              }
            });
          EXPECT_THROW(s.wait(), weft::cancelled);
          const auto took = std::chrono::steady_clock::now() - start;
          EXPECT_GE(took, 20ms);  // never early
          EXPECT_LT(took, 5s);
          EXPECT_EQ(stopped.load(), 3);
        }
        {
          const auto start = std::chrono::steady_clock::now();
          weft::scope s(15ms);
          EXPECT_THROW((void)never.recv(), weft::cancelled);  // the creator's own wait
          EXPECT_GE(std::chrono::steady_clock::now() - start, 15ms);
          EXPECT_TRUE(weft::this_green_thread::cancel_requested());  // while the scope lives
        }
      },
      cfg());
}

// A deadline ends a wait as promptly as a plain timer does: its lateness (median of 15) is
// within 1 ms of a sleep_for's of the same length, measured alternately in the same run.
TEST_P(cancel_test, deadlines_fire_as_promptly_as_plain_timers) {
  if (weft_test::chaos) GTEST_SKIP() << "times wake-ups that the chaos schedule delays at random";
  weft::run(
      [] {
        using ms = std::chrono::duration<double, std::milli>;
        constexpr auto timeout = 5ms;
        std::vector<double> plain, own_wait, child;
        weft::chan<int> never(0);
        for (int i = 0; i < 15; ++i) {
          auto t0 = std::chrono::steady_clock::now();
          weft::sleep_for(timeout);
          plain.push_back(ms(std::chrono::steady_clock::now() - t0 - timeout).count());

          t0 = std::chrono::steady_clock::now();
          {
            weft::scope s(timeout);
            EXPECT_THROW((void)never.recv(), weft::cancelled);
          }
          own_wait.push_back(ms(std::chrono::steady_clock::now() - t0 - timeout).count());

          std::atomic<std::int64_t> stopped_at{0};
          t0 = std::chrono::steady_clock::now();
          {
            weft::scope s;
            s.go_with_deadline(timeout, [&, never]() mutable {
              try {
                (void)never.recv();
              } catch (const weft::cancelled&) {
                stopped_at = std::chrono::steady_clock::now().time_since_epoch().count();
                throw;
              }
            });
            s.wait();
          }
          const auto at = std::chrono::steady_clock::time_point(
              std::chrono::steady_clock::duration(stopped_at.load()));
          child.push_back(ms(at - t0 - timeout).count());
        }
        for (const auto* v : {&plain, &own_wait, &child})
          for (double late : *v) EXPECT_GE(late, 0.0);  // never early
        auto median = [](std::vector<double> v) {
          std::sort(v.begin(), v.end());
          return v[v.size() / 2];
        };
        EXPECT_LE(median(own_wait), median(plain) + 1.0);
        EXPECT_LE(median(child), median(plain) + 1.0);
      },
      cfg());
}

TEST_P(cancel_test, a_deadline_bounds_its_creator_only_while_the_scope_lives) {
  weft::run(
      [] {
        weft::chan<int> never(0), ready(1);
        {
          weft::scope s(2ms);
          EXPECT_THROW((void)never.recv(), weft::cancelled);
          EXPECT_THROW(weft::sleep_for(1ms), weft::cancelled);  // still bounded: passed
        }
        EXPECT_FALSE(weft::this_green_thread::cancel_requested());
        weft::sleep_for(1ms);  // no longer bounded
        ready.send(1);
        EXPECT_EQ(ready.recv(), 1);
      },
      cfg());
  // Uncaught in main, it leaves weft::run like any exception.
  EXPECT_THROW(weft::run(
                   [] {
                     weft::scope s(1ms);
                     weft::sleep_for(1h);
                   },
                   cfg()),
               weft::cancelled);
}

TEST_P(cancel_test, go_with_deadline_cancels_only_that_child) {
  weft::run(
      [] {
        std::atomic<int> finished{0}, stopped{0};
        weft::scope s;
        s.go_with_deadline(10ms, [&] {
          try {
            weft::sleep_for(1h);
          } catch (const weft::cancelled&) {
            ++stopped;
            throw;
          }
        });
        s.go([&] {
          weft::sleep_for(30ms);
          ++finished;
        });
        s.wait();
        EXPECT_EQ(stopped.load(), 1);
        EXPECT_EQ(finished.load(), 1);
      },
      cfg());
}

TEST_P(cancel_test, cancel_shield_holds_the_request_until_the_next_unshielded_wait) {
  weft::run(
      [] {
        weft::chan<int> in(0), out(0);
        auto h = weft::spawn([in, out]() mutable {
          int got = 0;
          {
            weft::cancel_shield shield;
            got = in.recv().value();  // cancelled meanwhile: still completes
            EXPECT_TRUE(weft::this_green_thread::cancel_requested());
            out.send(got + 1);
          }
          (void)in.recv();  // the first wait after the shield throws
          return got;
        });
        await_parked(1);
        h.cancel();
        weft::sleep_for(2ms);
        in.send(41);
        EXPECT_EQ(out.recv().value(), 42);
        EXPECT_THROW(h.join(), weft::cancelled);
      },
      cfg());
}

TEST_P(cancel_test, stop_token_fires_stop_callbacks_on_cancel) {
  weft::run(
      [] {
        std::atomic<int> fired{0};
        weft::chan<int> wake(0);
        auto h = weft::spawn([&, wake]() mutable {
          std::stop_token t = weft::this_green_thread::stop_token();
          EXPECT_FALSE(t.stop_requested());
          std::stop_callback cb(t, [&] { ++fired; });
          (void)wake.recv();
        });
        await_parked(1);
        h.cancel();
        EXPECT_THROW(h.join(), weft::cancelled);
        EXPECT_EQ(fired.load(), 1);
        // On an OS thread (or before any request) the token never stops.
        std::thread([] {
          EXPECT_FALSE(weft::this_green_thread::stop_token().stop_possible());
        }).join();
      },
      cfg());
}

TEST_P(cancel_test, cancel_from_an_os_thread) {
  weft::run(
      [] {
        weft::chan<int> never(0);
        weft::scope s;
        std::atomic<int> stopped{0};
        for (int i = 0; i < 20; ++i)
          s.go([&, never]() mutable {
            try {
              (void)never.recv();
            } catch (const weft::cancelled&) {
              ++stopped;
              throw;
            }
          });
        auto h = weft::spawn([never]() mutable { (void)never.recv(); });
        await_parked(21);
        std::thread os([&] {
          h.cancel();
          s.cancel();
        });
        s.wait();
        EXPECT_THROW(h.join(), weft::cancelled);
        os.join();
        EXPECT_EQ(stopped.load(), 20);
      },
      cfg());
}

TEST_P(cancel_test, many_parked_green_threads_cancelled_at_once_all_unwind) {
  // TSan counts each fiber as a thread (at most 8128 alive).
  const int n = weft_test::thread_sanitized ? 2'000 : weft_test::sanitized ? 20'000 : 100'000;
  std::atomic<int> unwound{0};
  weft::run(
      [&] {
        weft::chan<int> never(0);
        weft::scope s;
        for (int i = 0; i < n; ++i)
          s.go(weft::spawn_options{.stack_size = 16 * 1024}, [&, never]() mutable {
            struct count_on_exit {
              std::atomic<int>& n;
              ~count_on_exit() { ++n; }
            } c{unwound};
            (void)never.recv();
          });
        await_parked(static_cast<std::uint64_t>(n));
        s.cancel();
        s.wait();
        EXPECT_EQ(unwound.load(), n);
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

// A server whose handler starts work for a request and cancels it when the client goes away.
TEST_P(cancel_test, a_client_that_disconnects_cancels_its_handlers_work) {
  weft::run(
      [] {
        constexpr int clients = 8;
        std::atomic<int> work_started{0}, work_cancelled{0}, handlers_done{0};
        tcp_listener l = tcp_listener::bind("127.0.0.1:0");
        weft::scope server;
        server.go([&] {
          weft::scope connections;
          for (;;) {
            tcp_stream conn = l.accept();
            connections.go([&, conn = std::move(conn)]() mutable {
              char buf[256];
              std::size_t got = 0;
              while (std::string_view(buf, got).find("\r\n\r\n") == std::string_view::npos)
                got += conn.read(std::span<char>(buf + got, sizeof buf - got));
              weft::scope work;
              work.go([&] {
                ++work_started;
                try {
                  weft::sleep_for(1h);  // the slow backend call
                } catch (const weft::cancelled&) {
                  ++work_cancelled;
                  throw;
                }
              });
              // Watch the connection: end of stream means the client left.
              std::error_code ec;
              const std::size_t n = conn.read(std::span<char>(buf), ec);
              EXPECT_EQ(n, 0u);
              work.cancel();
              work.wait();
              ++handlers_done;
            });
          }
        });
        for (int i = 0; i < clients; ++i) {
          tcp_stream c = tcp_stream::connect("127.0.0.1:" + std::to_string(l.port()));
          c.write_all("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
          while (work_started.load() <= i) weft::sleep_for(200us);
        }  // each client closes here
        while (handlers_done.load() < clients) weft::sleep_for(200us);
        EXPECT_EQ(work_cancelled.load(), clients);
        server.cancel();  // the accept loop, and with it every connection, stops
        server.wait();
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

}  // namespace
