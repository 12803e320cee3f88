// weft::net: echo with exact bytes, 10,000 connections, deadlines, reset, half-close, refused,
// EMFILE back-off, close waking a blocked reader, OS-thread clients, unwinding at shutdown.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using weft::net::tcp_listener;
using weft::net::tcp_stream;

class net_test : public weft_test::workers {};
WEFT_WORKER_COUNTS(net_test);

// Serves each accepted connection with `serve` in its own green thread until the listener is
// closed; returns the green thread running the accept loop.
template <class Serve>
weft::join_handle<void> serve_all(tcp_listener& l, Serve serve) {
  return weft::spawn([&l, serve] {
    for (;;) {
      std::error_code ec;
      tcp_stream s = l.accept(ec);
      if (ec) return;  // closed
      weft::go([serve, s = std::move(s)]() mutable { serve(s); });
    }
  });
}

void echo(tcp_stream& s) {
  std::vector<std::byte> buf(16 * 1024);
  for (;;) {
    std::error_code ec;
    const std::size_t n = s.read(buf, ec);
    if (ec || n == 0) return;
    s.write_all(std::span(buf.data(), n), ec);
    if (ec) return;
  }
}

std::vector<std::byte> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

// Reads exactly out.size() bytes (fails the test on early end of stream).
void read_exactly(tcp_stream& s, std::span<std::byte> out) {
  std::size_t got = 0;
  while (got < out.size()) {
    const std::size_t n = s.read(out.subspan(got));
    ASSERT_NE(n, 0u) << "end of stream after " << got << " of " << out.size() << " bytes";
    got += n;
  }
}

TEST_P(net_test, echo_round_trips_keep_every_byte_in_order) {
  weft::run(
      [] {
        tcp_listener l = tcp_listener::bind("127.0.0.1:0");
        auto server = serve_all(l, echo);
        const std::uint16_t port = l.port();
        ASSERT_NE(port, 0);
        weft::wait_group wg;
        std::atomic<int> verified{0};
        constexpr int clients = 40;
        wg.add(clients);
        for (int c = 0; c < clients; ++c) {
          weft::go([&, c] {
            tcp_stream s = tcp_stream::connect("127.0.0.1:" + std::to_string(port));
            // Sizes from one byte to well past the socket buffers, so writes must wait.
            for (std::size_t size : {std::size_t{1}, std::size_t{1000}, std::size_t{65536},
                                     static_cast<std::size_t>(c % 4 + 1) * 300'000}) {
              const auto data = random_bytes(size, static_cast<unsigned>(c * 7 + size));
              std::vector<std::byte> back(size);
              // Write from a second green thread while this one reads: a large echo would
              // deadlock if one green thread did both in turn.
              auto writer = weft::spawn([&] { s.write_all(data); });
              read_exactly(s, back);
              writer.join();
              EXPECT_EQ(std::memcmp(back.data(), data.data(), size), 0) << "size " << size;
            }
            ++verified;
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(verified.load(), clients);
        l.close();
        server.join();
      },
      cfg());
}

TEST_P(net_test, ipv6_loopback_works_when_the_host_has_it) {
  weft::run(
      [] {
        std::error_code ec;
        tcp_listener l = tcp_listener::bind(weft::net::address::parse("[::1]:0"),
                                            weft::net::listen_options{}, ec);
        if (ec) GTEST_SKIP() << "no IPv6 loopback here: " << ec.message();
        auto server = serve_all(l, echo);
        tcp_stream s = tcp_stream::connect("[::1]:" + std::to_string(l.port()));
        EXPECT_TRUE(s.peer_address().is_v6());
        EXPECT_EQ(s.peer_address().to_string(), "[::1]:" + std::to_string(l.port()));
        s.write_all(std::string_view("ping6"));
        std::byte buf[5];
        read_exactly(s, buf);
        EXPECT_EQ(std::memcmp(buf, "ping6", 5), 0);
        l.close();
        server.join();
      },
      cfg());
}

// The client side runs in a child process: both ends of 10,000 connections would need 20,000
// descriptors, the limit of one process here.
TEST_P(net_test, ten_thousand_concurrent_connections_each_verified) {
  // Under TSan each connection's green threads cost it ~10 ms of fiber bookkeeping: 500 there.
  const int connections = weft_test::thread_sanitized ? 500 : weft_test::sanitized ? 1000 : 10'000;
  constexpr std::size_t payload = 64;
  int ready_pipe[2];
  ASSERT_EQ(pipe(ready_pipe), 0);
  // The server listens before the fork so the child knows the port.
  std::error_code ec;
  std::uint16_t port = 0;
  std::atomic<int> accepted{0}, open_now{0}, most_open{0}, echoed_ok{0};
  const unsigned workers = GetParam();
  std::atomic<bool> listening{false};
  int port_pipe[2];
  ASSERT_EQ(pipe(port_pipe), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(port_pipe[1]);
    ::close(ready_pipe[0]);
    if (read(port_pipe[0], &port, sizeof port) != sizeof port) _exit(3);
    int failures = 0;
    weft::config c;
    c.workers = workers;
    weft::run(
        [&] {
          std::vector<tcp_stream> streams(connections);
          weft::wait_group connected, echoed, done;
          connected.add(connections);
          echoed.add(connections);
          done.add(connections);
          std::atomic<int> bad{0};
          for (int i = 0; i < connections; ++i) {
            weft::go([&, i] {
              std::error_code e;
              for (int attempt = 0; attempt < 5; ++attempt) {
                streams[i] = tcp_stream::connect(
                    weft::net::address::parse("127.0.0.1:" + std::to_string(port)), 10s, e);
                if (!e) break;
                weft::sleep_for(50ms);
              }
              if (e) ++bad;
              connected.done();
              connected.wait();  // every connection is open before any is used
              if (!e) {
                std::string msg = "connection " + std::to_string(i) + " ";
                msg.resize(payload, '.');
                streams[i].write_all(msg);
                std::string back(payload, '\0');
                std::size_t got = 0;
                while (got < payload) {
                  const std::size_t n =
                      streams[i].read(std::span(back.data() + got, payload - got), e);
                  if (e || n == 0) break;
                  got += n;
                }
                if (back != msg) ++bad;
              }
              // Close only once every connection has had its echo: the server then holds all
              // of them open at once.
              echoed.done();
              echoed.wait();
              if (!e) {
                streams[i].close();
              }
              done.done();
            });
          }
          done.wait();
          failures = bad.load();
        },
        c);
    _exit(failures == 0 ? 0 : 1);
  }
  ::close(port_pipe[0]);
  ::close(ready_pipe[1]);
  ::close(ready_pipe[0]);
  weft::run(
      [&] {
        tcp_listener l =
            tcp_listener::bind("127.0.0.1:0", weft::net::listen_options{.backlog = 4096});
        port = l.port();
        listening = true;
        ASSERT_EQ(write(port_pipe[1], &port, sizeof port), static_cast<ssize_t>(sizeof port));
        weft::wait_group served;
        served.add(connections);
        for (int i = 0; i < connections; ++i) {
          tcp_stream s = l.accept(ec);
          ASSERT_FALSE(ec) << ec.message();
          ++accepted;
          weft::go([&, s = std::move(s)]() mutable {
            int now = ++open_now;
            for (int m = most_open.load(); now > m && !most_open.compare_exchange_weak(m, now);) {
            }
            std::string buf(payload, '\0');
            std::size_t got = 0;
            std::error_code e;
            while (got < payload) {
              const std::size_t n = s.read(std::span(buf.data() + got, payload - got), e);
              if (e || n == 0) break;
              got += n;
            }
            if (got == payload && buf.rfind("connection ", 0) == 0) {
              s.write_all(buf, e);
              if (!e) ++echoed_ok;
            }
            // Hold the connection until the client closes it.
            char extra;
            s.read(std::span(&extra, 1), e);
            --open_now;
            served.done();
          });
        }
        served.wait();
      },
      cfg());
  ::close(port_pipe[1]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "client process status " << status;
  EXPECT_EQ(accepted.load(), connections);
  EXPECT_EQ(echoed_ok.load(), connections);
  EXPECT_EQ(most_open.load(), connections);  // all were open at once
  EXPECT_EQ(open_now.load(), 0);
}

TEST_P(net_test, deadlines_bound_reads_writes_and_accepts) {
  weft::run(
      [] {
        tcp_listener l = tcp_listener::bind("127.0.0.1:0");
        tcp_stream client = tcp_stream::connect("127.0.0.1:" + std::to_string(l.port()));
        tcp_stream server = l.accept();

        // A silent peer: the read times out no earlier than asked.
        auto start = std::chrono::steady_clock::now();
        server.set_read_timeout(50ms);
        std::byte buf[16];
        std::error_code ec;
        EXPECT_EQ(server.read(buf, ec), 0u);
        EXPECT_EQ(ec, std::errc::timed_out);
        EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
        try {
          server.read(buf);
          ADD_FAILURE() << "read past its deadline did not throw";
        } catch (const std::system_error& e) {
          EXPECT_EQ(e.code(), std::errc::timed_out);
        }

        // A deadline set while a read waits applies to that read.
        server.set_read_deadline(weft::net::no_deadline);
        auto reader = weft::spawn([&] {
          std::error_code e;
          server.read(buf, e);
          return e;
        });
        weft::sleep_for(20ms);
        server.set_read_timeout(10ms);
        EXPECT_EQ(reader.join(), std::errc::timed_out);

        // A peer that never reads: writes fill the buffers, then time out, reporting progress.
        client.set_write_timeout(100ms);
        const std::vector<std::byte> big(64 << 20);
        const std::size_t written = client.write_all(big, ec);
        EXPECT_EQ(ec, std::errc::timed_out);
        EXPECT_GT(written, 0u);
        EXPECT_LT(written, big.size());

        // accept with nobody connecting.
        l.set_deadline(std::chrono::steady_clock::now() + 30ms);
        l.accept(ec);
        EXPECT_EQ(ec, std::errc::timed_out);
      },
      cfg());
}

TEST_P(net_test, reset_half_close_and_refused_give_clear_errors) {
  weft::run(
      [] {
        tcp_listener l = tcp_listener::bind("127.0.0.1:0");
        const std::string addr = "127.0.0.1:" + std::to_string(l.port());

        {  // Half-close: the server sees end of stream after the data and can still answer.
          tcp_stream client = tcp_stream::connect(addr);
          tcp_stream server = l.accept();
          client.write_all(std::string_view("last words"));
          client.shutdown();
          std::string got(32, '\0');
          std::size_t n = 0, total = 0;
          while ((n = server.read(std::span(got.data() + total, got.size() - total))) != 0)
            total += n;
          EXPECT_EQ(got.substr(0, total), "last words");
          EXPECT_EQ(server.read(std::span(got.data(), 1)), 0u);  // stays at end of stream
          server.write_all(std::string_view("reply"));
          server.close();
          std::string back(5, '\0');
          read_exactly(client, std::as_writable_bytes(std::span(back)));
          EXPECT_EQ(back, "reply");
          EXPECT_EQ(client.read(std::span(got.data(), 1)), 0u);
        }
        {  // Reset: SO_LINGER 0 then close sends RST.
          tcp_stream client = tcp_stream::connect(addr);
          tcp_stream server = l.accept();
          linger lg{1, 0};
          ASSERT_EQ(setsockopt(server.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
          server.close();
          std::byte buf[8];
          std::error_code ec;
          EXPECT_EQ(client.read(buf, ec), 0u);
          EXPECT_EQ(ec, std::errc::connection_reset);
          client.write_all(std::string_view("anyone?"), ec);
          EXPECT_TRUE(ec == std::errc::broken_pipe || ec == std::errc::connection_reset)
              << ec.message();
        }
        {  // Refused: nothing listens on the port any more.
          tcp_listener gone = tcp_listener::bind("127.0.0.1:0");
          const std::string gone_addr = "127.0.0.1:" + std::to_string(gone.port());
          gone.close();
          std::error_code ec;
          tcp_stream s = tcp_stream::connect(weft::net::address::parse(gone_addr), 1s, ec);
          EXPECT_EQ(ec, std::errc::connection_refused);
          EXPECT_FALSE(s.is_open());
          EXPECT_THROW(tcp_stream::connect(gone_addr), std::system_error);
        }
        {  // Using a closed stream is an error, not a crash.
          tcp_stream client = tcp_stream::connect(addr);
          tcp_stream server = l.accept();
          client.close();
          std::byte buf[4];
          std::error_code ec;
          client.read(buf, ec);
          EXPECT_EQ(ec, std::errc::bad_file_descriptor);
          EXPECT_THROW(client.write_all(std::string_view("x")), std::system_error);
        }
        EXPECT_THROW(weft::net::address::parse("no-port"), std::system_error);
        EXPECT_THROW(weft::net::address::parse("1.2.3.4:99999"), std::system_error);
      },
      cfg());
}

TEST_P(net_test, accept_backs_off_when_out_of_descriptors_and_recovers) {
  // UBSan checks a new thread's vptr by probing memory through a pipe: if the monitor starts a
  // spare worker while every descriptor is taken (a worker the OS preempted for 10 ms looks
  // stuck), the probe fails and UBSan reports a bogus "invalid vptr". Single-threaded mode has no
  // spares; the normal build covers the other worker counts.
  if (weft_test::sanitized && GetParam() > 1)
    GTEST_SKIP() << "UBSan's own pipe probe needs a free descriptor";
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  weft::run(
      [&] {
        tcp_listener l = tcp_listener::bind("127.0.0.1:0");
        const auto addr = weft::net::address::parse("127.0.0.1:" + std::to_string(l.port()));
        // The client socket takes the last free descriptor; then there is none for accept.
        int highest = 0;
        for (int fd = 0; fd < static_cast<int>(saved.rlim_cur); ++fd)
          if (fcntl(fd, F_GETFD) != -1) highest = fd;
        rlimit low = saved;
        low.rlim_cur = static_cast<rlim_t>(highest) + 32;
        ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
        tcp_stream client = tcp_stream::connect(addr);
        std::vector<int> hogs;
        for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) hogs.push_back(fd);
        ASSERT_EQ(errno, EMFILE);
        auto server = weft::spawn([&] {
          tcp_stream s = l.accept();
          s.write_all(std::string_view("served"));
        });
        weft::sleep_for(300ms);
        const std::uint64_t during = l.resource_backoffs();
        for (int fd : hogs) ::close(fd);
        server.join();
        std::string got(6, '\0');
        read_exactly(client, std::as_writable_bytes(std::span(got)));
        EXPECT_EQ(got, "served");
        // 5, 10, 20, 40, 80, 160 ms: a handful of retries in 300 ms, not a spin.
        EXPECT_GE(during, 1u);
        EXPECT_LE(during, 8u);
      },
      cfg());
  setrlimit(RLIMIT_NOFILE, &saved);
}

TEST_P(net_test, a_green_thread_parked_on_a_socket_holds_no_worker_and_close_wakes_it) {
  weft::run(
      [] {
        tcp_listener l = tcp_listener::bind("127.0.0.1:0");
        tcp_stream client = tcp_stream::connect("127.0.0.1:" + std::to_string(l.port()));
        tcp_stream server = l.accept();
        std::atomic<bool> reader_returned{false};
        auto reader = weft::spawn([&] {
          std::byte buf[8];
          std::error_code ec;
          server.read(buf, ec);
          reader_returned = true;
          return ec;
        });
        // Meanwhile (even with one worker) other green threads run to completion.
        weft::yield();
        weft::chan<int> ch;
        weft::wait_group wg;
        constexpr int n = 1000;
        wg.add(n);
        std::atomic<long> sum{0};
        for (int i = 0; i < n; ++i)
          weft::go([&, i] {
            sum += i;
            wg.done();
          });
        wg.wait();
        EXPECT_EQ(sum.load(), n * (n - 1) / 2);
        EXPECT_FALSE(reader_returned.load());
        server.close();
        EXPECT_EQ(reader.join(), std::errc::bad_file_descriptor);
      },
      cfg());
}

// The first socket of a program may be opened, and waited on, by a green thread running on a
// spare worker while every worker sleeps on its futex (they saw no socket to watch when they went
// to sleep). Spares never wait in epoll: retiring, the spare must hand the watch to a worker, or
// the connection is never accepted.
TEST_P(net_test, a_socket_first_waited_on_from_a_spare_worker_is_still_watched) {
  if (GetParam() == 1) GTEST_SKIP() << "single-threaded mode has no spare workers";
  const int n = static_cast<int>(GetParam());
  weft_test::worker_blockers blockers(n);
  std::atomic<bool> ran_on_spare{false}, client_gave_up{false};
  std::error_code accept_error;
  std::string received;
  std::thread client;
  weft::run(
      [&] {
        weft::wait_group wg;
        wg.add(n + 1);
        blockers.spawn(wg);
        weft::go([&] {
          while (!blockers.all_blocking()) weft::yield();
          // Every worker is held in read(2): this green thread runs on a spare. Release the
          // workers, then let them fall asleep with no socket open.
          ran_on_spare = weft::stats().spare_workers >= 1;
          blockers.release();
          std::this_thread::sleep_for(100ms);  // holds the spare: no yield, no park
          tcp_listener l = tcp_listener::bind("127.0.0.1:0");
          const std::uint16_t port = l.port();
          client = std::thread([&, port] {
            // A plain blocking client: it must not depend on weft's poller itself.
            const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in sa{};
            sa.sin_family = AF_INET;
            sa.sin_port = htons(port);
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
            EXPECT_EQ(::write(fd, "hello", 5), 5);
            pollfd p{fd, POLLIN, 0};
            char back[5];
            if (::poll(&p, 1, 10'000) == 1 && ::read(fd, back, 5) == 5) {
              received.assign(back, 5);
            } else {
              client_gave_up = true;
              l.close();  // the accept was never woken: end it rather than hang the test
            }
            ::close(fd);
          });
          tcp_stream s = l.accept(accept_error);
          if (!accept_error) {
            char buf[5];
            std::size_t got = 0;
            while (got < 5) {
              std::error_code e;
              const std::size_t k =
                  s.read(std::as_writable_bytes(std::span(buf + got, 5 - got)), e);
              if (e || k == 0) break;
              got += k;
            }
            s.write_all(std::as_bytes(std::span(buf, got)));
          }
          client.join();
          wg.done();
        });
        wg.wait();
      },
      cfg());
  EXPECT_EQ(blockers.released(), n);
  EXPECT_TRUE(ran_on_spare.load());
  EXPECT_FALSE(accept_error) << accept_error.message();
  EXPECT_FALSE(client_gave_up.load());
  EXPECT_EQ(received, "hello");
}

TEST_P(net_test, os_thread_clients_talk_to_green_thread_servers) {
  weft::run(
      [] {
        tcp_listener l = tcp_listener::bind("127.0.0.1:0");
        auto server = serve_all(l, echo);
        const std::string addr = "127.0.0.1:" + std::to_string(l.port());
        std::atomic<int> ok{0};
        std::vector<std::thread> threads;
        weft::wait_group finished;
        finished.add(4);
        for (int t = 0; t < 4; ++t) {
          threads.emplace_back([&, t] {
            tcp_stream s = tcp_stream::connect(addr);
            const auto data = random_bytes(200'000, static_cast<unsigned>(t));
            std::thread writer([&] { s.write_all(data); });
            std::vector<std::byte> back(data.size());
            std::size_t got = 0;
            while (got < back.size()) got += s.read(std::span(back).subspan(got));
            writer.join();
            if (back == data) ++ok;
            finished.done();
          });
        }
        finished.wait();  // parks this green thread, not its worker
        for (auto& t : threads) t.join();
        EXPECT_EQ(ok.load(), 4);
        l.close();
        server.join();
      },
      cfg());
}

TEST_P(net_test, run_unwinds_green_threads_parked_on_sockets) {
  static std::atomic<int> destroyed{0};
  destroyed = 0;
  struct guard {
    ~guard() { ++destroyed; }
  };
  weft::run(
      [] {
        auto idle = std::make_shared<tcp_listener>(tcp_listener::bind("127.0.0.1:0"));
        tcp_listener l = tcp_listener::bind("127.0.0.1:0");
        auto client = std::make_shared<tcp_stream>(
            tcp_stream::connect("127.0.0.1:" + std::to_string(l.port())));
        auto server = std::make_shared<tcp_stream>(l.accept());
        weft::go([idle] {
          guard g;
          idle->accept();  // nobody connects
        });
        weft::go([client, server] {
          guard g;
          std::byte buf[4];
          client->read(buf);  // the server never writes
        });
        // Both parked on their sockets, not merely queued, when run ends.
        while (weft::stats().parked < 2) weft::sleep_for(1ms);
      },
      cfg());
  EXPECT_EQ(destroyed.load(), 2);
}

}  // namespace
