// Stackless tasks doing I/O: echo over TCP with tasks on both ends (every byte verified), a
// megabyte each way that must wait for room, accept, connect by address and by name, refused
// connections, deadlines, close and cancellation reaching a parked read, pipes and fd_waiter,
// name resolution, async_blocking (values, exceptions, cancellation before and during the call),
// and the end of weft::run unwinding a task parked on a socket.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using weft::net::tcp_listener;
using weft::net::tcp_stream;

class task_io_test : public weft_test::workers {};
WEFT_WORKER_COUNTS(task_io_test);

// Byte i of connection c's stream: every byte says which connection and where it belongs.
std::byte pattern(int c, std::size_t i) {
  return static_cast<std::byte>((i * 131 + static_cast<std::size_t>(c) * 7) & 0xff);
}

weft::task<void> echo(tcp_stream s) {
  char buf[1024];
  for (std::size_t n; (n = co_await s.async_read(std::span(buf))) != 0;)
    co_await s.async_write_all(std::string_view(buf, n));
}

weft::task<void> serve(tcp_listener& l, int connections) {
  for (int i = 0; i < connections; ++i) weft::go(echo(co_await l.async_accept()));
}

// Writes `size` patterned bytes and reads them back, checking each; returns the bytes checked.
weft::task<std::size_t> echo_client(int c, std::string where, std::size_t size) {
  tcp_stream s = co_await tcp_stream::async_connect(where, 5s);
  std::vector<std::byte> out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = pattern(c, i);
  std::size_t checked = 0;
  // A writer of its own, so that neither side waits for the other's buffer to drain.
  auto writer = weft::spawn([](tcp_stream& s, std::vector<std::byte>& out) -> weft::task<void> {
    co_await s.async_write_all(std::span<const std::byte>(out));
    s.shutdown(weft::net::shutdown_how::write);
  }(s, out));
  std::byte buf[4096];
  std::size_t wrong = 0;
  for (std::size_t n; (n = co_await s.async_read(std::span(buf))) != 0;)
    for (std::size_t i = 0; i < n; ++i, ++checked) wrong += buf[i] != pattern(c, checked);
  co_await std::move(writer);
  co_return wrong == 0 ? checked : 0;
}

TEST_P(task_io_test, tasks_echo_over_tcp_every_byte_verified) {
  static constexpr int clients = 16;
  static constexpr std::size_t size = weft_test::sanitized ? 64 * 1024 : 1024 * 1024;
  weft::run(
      [] {
        auto l = tcp_listener::bind("127.0.0.1:0");
        auto server = weft::spawn(serve(l, clients));
        std::vector<weft::join_handle<std::size_t>> hs;
        for (int c = 0; c < clients; ++c) {
          // Half by name and port, half by address (no lookup either way for a numeric host).
          std::string where = c % 2 ? "127.0.0.1:" + std::to_string(l.port())
                                    : "localhost:" + std::to_string(l.port());
          hs.push_back(weft::spawn(echo_client(c, where, size)));
        }
        for (auto& h : hs) EXPECT_EQ(h.join(), size);
        server.join();
      },
      cfg());
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

TEST_P(task_io_test, a_green_thread_and_a_task_talk_over_one_connection) {
  weft::run(
      [] {
        auto l = tcp_listener::bind("127.0.0.1:0");
        const weft::net::address where = l.local_address();
        auto client = weft::spawn([](weft::net::address where) -> weft::task<std::string> {
          tcp_stream s = co_await tcp_stream::async_connect(where);
          co_await s.async_write_all("ping");
          char buf[4];
          std::size_t got = 0;
          while (got < 4) got += co_await s.async_read(std::span(buf + got, 4 - got));
          co_return std::string(buf, 4);
        }(where));
        tcp_stream s = l.accept();  // this green thread, blocking
        char buf[4];
        std::size_t got = 0;
        while (got < 4) got += s.read(std::span(buf + got, 4 - got));
        EXPECT_EQ(std::string(buf, 4), "ping");
        s.write_all("pong");
        EXPECT_EQ(client.join(), "pong");
      },
      cfg());
}

TEST_P(task_io_test, refused_connections_and_deadlines_are_reported) {
  weft::run(
      [] {
        int port = 0;
        {
          auto l = tcp_listener::bind("127.0.0.1:0");
          port = l.port();
        }  // closed: nobody listens there now
        auto refused = weft::spawn([](int port) -> weft::task<bool> {
          std::error_code ec;
          tcp_stream s =
              co_await tcp_stream::async_connect("127.0.0.1:" + std::to_string(port), 1s, ec);
          co_return ec == std::errc::connection_refused && !s.is_open();
        }(port));
        EXPECT_TRUE(refused.join());
        auto refused_throws = weft::spawn([](int port) -> weft::task<void> {
          (void)co_await tcp_stream::async_connect("127.0.0.1:" + std::to_string(port));
        }(port));
        EXPECT_THROW(refused_throws.join(), std::system_error);

        auto l = tcp_listener::bind("127.0.0.1:0");
        auto quiet_peer = weft::spawn([](tcp_listener& l) -> weft::task<tcp_stream> {
          co_return co_await l.async_accept();  // accepts and never writes
        }(l));
        auto reader = weft::spawn([](weft::net::address where) -> weft::task<int> {
          tcp_stream s = co_await tcp_stream::async_connect(where);
          const auto start = std::chrono::steady_clock::now();  // before the deadline is set
          s.set_read_timeout(30ms);
          char buf[8];
          std::error_code ec;
          const std::size_t n = co_await s.async_read(std::span(buf), ec);
          if (n != 0 || ec != std::errc::timed_out) co_return 1;
          if (std::chrono::steady_clock::now() - start < 30ms) co_return 2;  // never early
          try {
            (void)co_await s.async_read(std::span(buf));
          } catch (const std::system_error& e) {
            co_return e.code() == std::errc::timed_out ? 0 : 3;
          }
          co_return 4;
        }(l.local_address()));
        EXPECT_EQ(reader.join(), 0);
        (void)quiet_peer.join();
        l.set_deadline(std::chrono::steady_clock::now() + 20ms);
        auto accept_times_out = weft::spawn([](tcp_listener& l) -> weft::task<bool> {
          std::error_code ec;
          (void)co_await l.async_accept(ec);
          co_return ec == std::errc::timed_out;
        }(l));
        EXPECT_TRUE(accept_times_out.join());
      },
      cfg());
}

TEST_P(task_io_test, close_and_cancel_reach_a_task_parked_on_a_socket) {
  weft::run(
      [] {
        auto [a, b] = weft::io::pipe();
        auto parked = weft::spawn([](weft::io::stream& r) -> weft::task<bool> {
          char buf[8];
          std::error_code ec;
          (void)co_await r.async_read(std::span(buf), ec);
          co_return ec == std::errc::bad_file_descriptor;
        }(a));
        weft_test::wait_until_parked(1);
        a.close();
        EXPECT_TRUE(parked.join());

        auto [c, d] = weft::io::pipe();
        auto [e, f] = weft::io::pipe();
        auto quiet = weft::spawn([](weft::io::stream& r) -> weft::task<bool> {
          char buf[8];
          std::error_code ec;
          (void)co_await r.async_read(std::span(buf), ec);
          co_return ec == std::errc::operation_canceled;
        }(c));
        auto throwing = weft::spawn([](weft::io::stream& r) -> weft::task<void> {
          char buf[8];
          (void)co_await r.async_read(std::span(buf));
        }(e));
        weft_test::wait_until_parked(2);
        quiet.cancel();
        throwing.cancel();
        EXPECT_TRUE(quiet.join());
        EXPECT_THROW(throwing.join(), weft::cancelled);
        // The descriptors are still usable after the cancelled waits.
        auto reader = weft::spawn([](weft::io::stream& r) -> weft::task<std::string> {
          char buf[2];
          std::size_t n = co_await r.async_read(std::span(buf));
          co_return std::string(buf, n);
        }(c));
        d.write_all("ok");
        EXPECT_EQ(reader.join(), "ok");
        (void)b;
        (void)f;
      },
      cfg());
}

TEST_P(task_io_test, fd_waiter_parks_a_task_until_a_foreign_descriptor_is_ready) {
  weft::run(
      [] {
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
        auto h = weft::spawn([](int fd) -> weft::task<std::string> {
          weft::io::fd_waiter ready(fd);
          char buf[8];
          for (;;) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n > 0) co_return std::string(buf, static_cast<std::size_t>(n));
            co_await ready.async_wait_readable();
          }
        }(fds[0]));
        weft_test::wait_until_parked(1);
        ASSERT_EQ(::write(fds[1], "hi", 2), 2);
        EXPECT_EQ(h.join(), "hi");
        auto times_out = weft::spawn([](int fd) -> weft::task<bool> {
          weft::io::fd_waiter ready(fd);
          std::error_code ec;
          co_await ready.async_wait_readable(std::chrono::steady_clock::now() + 10ms, ec);
          co_return ec == std::errc::timed_out;
        }(fds[0]));
        EXPECT_TRUE(times_out.join());
        ::close(fds[0]);
        ::close(fds[1]);
      },
      cfg());
}

TEST_P(task_io_test, async_resolve_finds_localhost_and_reports_a_missing_name) {
  weft::run(
      [] {
        auto found = weft::spawn([]() -> weft::task<bool> {
          auto all = co_await weft::net::async_resolve("localhost", 80);
          bool loopback = !all.empty();
          for (const auto& a : all) loopback = loopback && a.port() == 80;
          co_return loopback;
        }());
        EXPECT_TRUE(found.join());
        auto missing = weft::spawn([]() -> weft::task<bool> {
          std::error_code ec;
          auto all = co_await weft::net::async_resolve("no-such-host.invalid", 80, 5s, ec);
          co_return all.empty() && ec&& ec != std::errc::timed_out;
        }());
        EXPECT_TRUE(missing.join());
      },
      cfg());
}

TEST_P(task_io_test, async_blocking_runs_off_the_workers_and_can_be_cancelled) {
  weft::run(
      [] {
        const auto worker = std::this_thread::get_id();
        auto value = weft::spawn([](std::thread::id worker) -> weft::task<int> {
          co_return co_await weft::async_blocking(
              [worker] { return std::this_thread::get_id() != worker ? 42 : -1; });
        }(worker));
        EXPECT_EQ(value.join(), 42);
        auto fails = weft::spawn([]() -> weft::task<void> {
          co_await weft::async_blocking([] { throw std::runtime_error("from the pool"); });
        }());
        EXPECT_THROW(fails.join(), std::runtime_error);

        // Cancelled while the call runs: the task waits for it, then throws weft::cancelled.
        std::atomic<bool> started{false}, release{false}, finished{false};
        auto running = weft::spawn([](std::atomic<bool>& started, std::atomic<bool>& release,
                                      std::atomic<bool>& finished) -> weft::task<void> {
          co_await weft::async_blocking([&] {
            started = true;
            while (!release) std::this_thread::sleep_for(1ms);
            finished = true;
          });
        }(started, release, finished));
        while (!started) weft::sleep_for(1ms);
        running.cancel();
        weft::sleep_for(20ms);
        release = true;
        EXPECT_THROW(running.join(), weft::cancelled);
        EXPECT_TRUE(finished.load());  // joined only after the call ended
      },
      cfg());
}

TEST_P(task_io_test, the_end_of_run_unwinds_a_task_parked_on_a_socket) {
  std::atomic<int> unwound{0};
  weft::io::stream ends[2];  // outlive the run: the task is unwound at its end
  weft::run(
      [&] {
        auto [r, w] = weft::io::pipe();
        ends[0] = std::move(r);
        ends[1] = std::move(w);
        weft::go([](weft::io::stream& r, std::atomic<int>& unwound) -> weft::task<void> {
          struct counted {
            std::atomic<int>& n;
            ~counted() { ++n; }
          } guard{unwound};
          char buf[8];
          (void)co_await r.async_read(std::span(buf));
        }(ends[0], unwound));
        weft_test::wait_until_parked(1);
      },
      cfg());
  EXPECT_EQ(unwound.load(), 1);
  EXPECT_EQ(weft::stats().green_threads_live, 0u);
}

}  // namespace
