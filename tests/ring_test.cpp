// The io_uring backend's own cases (netpoll/ring.hpp): reads that wait on a worker's ring end
// on their data, a deadline, close, a deadline moved, a cancellation or the end of weft::run,
// and never lose a byte or leave a request behind; the backend is chosen at run time and falls
// back to epoll where the kernel refuses rings; a forked child gets rings of its own. The rest
// of the net suite runs under both backends (tests/CMakeLists.txt).
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using weft::net::unix_stream;

class ring_test : public weft_test::ring_workers {
 protected:
  // Runs `round(i)` 20 times in one runtime with rings.
  template <class F>
  void rounds(F round) const {
    weft::run(
        [&] {
          for (int i = 0; i < 20; ++i) round(i);
        },
        ring_cfg());
  }
};
WEFT_WORKER_COUNTS(ring_test);

std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span(s));
}

// A read that is answered by nothing but its end: how it ended.
std::error_code read_error(unix_stream& s) {
  std::byte buf[16];
  std::error_code ec;
  s.read(buf, ec);
  return ec;
}

std::string read_string(unix_stream& s, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const std::size_t k = s.read(std::as_writable_bytes(std::span(out)).subspan(got));
    if (k == 0) break;
    got += k;
  }
  out.resize(got);
  return out;
}

TEST_P(ring_test, reads_that_wait_complete_through_the_ring_with_every_byte) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  weft::run(
      [] {
        EXPECT_STREQ(weft::stats().poller, "io_uring");
        const std::uint64_t before = weft::stats().ring_reads;
        constexpr int pairs = 50, rounds = 40;
        weft::wait_group wg;
        wg.add(pairs);
        std::atomic<int> verified{0};
        for (int p = 0; p < pairs; ++p) {
          auto [a, b] = unix_stream::pair();
          weft::go([&, b = std::move(b)]() mutable {  // echo: each read waits for the next
            std::byte buf[256];
            for (;;) {
              const std::size_t n = b.read(buf);
              if (n == 0) break;
              b.write_all(std::span(buf, n));
            }
            wg.done();
          });
          weft::go([&, p, a = std::move(a)]() mutable {
            for (int r = 0; r < rounds; ++r) {
              const std::string m = "pair " + std::to_string(p) + " round " + std::to_string(r);
              a.write_all(bytes(m));
              verified += read_string(a, m.size()) == m;
            }
            a.shutdown();
          });
        }
        wg.wait();
        EXPECT_EQ(verified.load(), pairs * rounds);
        // Every echo read found the socket empty and waited on a ring.
        EXPECT_GE(weft::stats().ring_reads - before, std::uint64_t{pairs * rounds});
      },
      ring_cfg());
}

TEST_P(ring_test, a_deadline_ends_a_ring_read_and_the_late_data_is_not_lost) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  weft::run(
      [] {
        auto [a, b] = unix_stream::pair();
        std::byte buf[64];
        for (int i = 0; i < 20; ++i) {
          b.set_read_timeout(2ms);
          std::error_code ec;
          EXPECT_EQ(b.read(buf, ec), 0u);
          EXPECT_EQ(ec, std::errc::timed_out);
          const std::string m = "late " + std::to_string(i);
          a.write_all(bytes(m));
          b.set_read_deadline(unix_stream::clock::time_point::max());
          EXPECT_EQ(read_string(b, m.size()), m);  // the cancelled request took nothing
        }
      },
      ring_cfg());
}

TEST_P(ring_test, close_and_a_moved_deadline_wake_a_ring_read) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  rounds([](int) {
    auto ab = unix_stream::pair();  // the other end stays open, and silent
    auto& b = ab.second;
    // close() from another green thread: the read ends with bad_file_descriptor.
    auto reader = weft::spawn([&b] { return read_error(b); });
    weft_test::wait_until_parked(1);
    b.close();
    EXPECT_EQ(reader.join(), std::errc::bad_file_descriptor);

    // A deadline moved while the read waits: it wakes, reads the new one, and waits on.
    auto cd = unix_stream::pair();  // clang 14 cannot capture a structured binding
    auto& c = cd.first;
    auto& d = cd.second;
    auto waiting = weft::spawn([&d] { return read_string(d, 5); });
    weft_test::wait_until_parked(1);
    d.set_read_timeout(10s);  // a kick: the read's request is cancelled and queued anew
    weft::sleep_for(1ms);
    c.write_all(bytes("hello"));
    EXPECT_EQ(waiting.join(), "hello");
  });
}

TEST_P(ring_test, a_cancelled_ring_read_reports_it_and_leaves_the_data) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  rounds([](int) {
    auto ab = unix_stream::pair();  // clang 14 cannot capture a structured binding
    auto& a = ab.first;
    auto& b = ab.second;
    auto reader = weft::spawn([&b] { return read_error(b); });
    weft_test::wait_until_parked(1);
    reader.cancel();
    try {
      EXPECT_EQ(reader.join(), std::errc::operation_canceled);
    } catch (const weft::cancelled&) {
      // join() reports the request itself when the green thread ended by it
    }
    a.write_all(bytes("after"));
    EXPECT_EQ(read_string(b, 5), "after");
  });
}

// A deadline that fires as the data arrives: whichever wins, the call leaves nothing of itself
// behind on the socket (an edge or close() afterwards must find no waiter from it).
TEST_P(ring_test, a_deadline_racing_the_completion_leaves_no_waiter_behind) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  weft::run(
      [] {
        int timed_out = 0, read = 0;
        for (int i = 0; i < 400; ++i) {
          auto ab = unix_stream::pair();  // clang 14 cannot capture a structured binding
          auto& a = ab.first;
          auto& b = ab.second;
          const auto delay = std::chrono::microseconds(20 + (i * 7) % 60);
          auto writer = weft::spawn([&a, delay] {
            weft::sleep_for(delay);
            a.write_all(bytes("x"));
          });
          b.set_read_timeout(delay);
          std::byte buf[8];
          std::error_code ec;
          const std::size_t n = b.read(buf, ec);
          (ec ? timed_out : read) += 1;
          EXPECT_TRUE(n == 1 || ec == std::errc::timed_out) << ec.message();
          writer.join();
          a.write_all(bytes("more"));  // an edge for whoever still waits
          weft::yield();
          b.close();  // and close() wakes whoever still waits
        }
        EXPECT_EQ(timed_out + read, 400);
      },
      ring_cfg());
}

TEST_P(ring_test, readers_parked_on_rings_are_unwound_at_the_end_of_run) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  std::atomic<int> unwound{0};
  std::vector<std::pair<unix_stream, unix_stream>> pairs;
  weft::run(
      [&] {
        for (int i = 0; i < 100; ++i) pairs.push_back(unix_stream::pair());
        for (auto& p : pairs) {
          weft::go([&unwound, &s = p.second] {
            struct count_unwind {
              std::atomic<int>& n;
              ~count_unwind() { ++n; }
            } guard{unwound};
            std::byte buf[16];
            s.read(buf);  // never answered
          });
        }
        weft_test::wait_until_parked(100);
      },
      ring_cfg());
  EXPECT_EQ(unwound.load(), 100);
}

// A byte pattern whose every position is checkable: 4 MiB sent in one call and in 64 KiB calls.
std::byte pattern_at(std::size_t i) {
  return static_cast<std::byte>((i * 131 + i / 4096) & 0xff);
}

TEST_P(ring_test, sends_go_through_the_ring_and_a_slow_reader_gets_every_byte_in_order) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  rounds([](int round) {
    if (round >= 4) return;  // 16 MiB through a socket per worker count is enough
    constexpr std::size_t total = 4u << 20;
    const std::uint64_t before = weft::stats().ring_sends;
    auto ab = unix_stream::pair();  // clang 14 cannot capture a structured binding
    auto& a = ab.first;
    auto& b = ab.second;
    auto writer = weft::spawn([&a, round] {
      std::vector<std::byte> data(total);
      for (std::size_t i = 0; i < total; ++i) data[i] = pattern_at(i);
      if (round % 2 == 0) {
        a.write_all(data);  // waits for room many times: the kernel takes it in parts
      } else {
        for (std::size_t at = 0; at < total; at += 65536)
          a.write_all(std::span(data).subspan(at, 65536));
      }
      a.shutdown();
    });
    std::vector<std::byte> buf(100'000);
    std::size_t got = 0, wrong = 0;
    for (int pass = 0;; ++pass) {
      const std::size_t n = b.read(buf);
      if (n == 0) break;
      for (std::size_t i = 0; i < n; ++i) wrong += buf[i] != pattern_at(got + i);
      got += n;
      if (pass % 8 == 0) weft::sleep_for(100us);  // slower than the writer: it waits for room
    }
    writer.join();
    EXPECT_EQ(got, total);
    EXPECT_EQ(wrong, 0u);
    EXPECT_GT(weft::stats().ring_sends - before, 0u);
  });
}

// Fills `a`'s send buffer (and `b`'s receive buffer) until a send has to wait.
std::size_t fill_until_full(unix_stream& a) {
  std::vector<std::byte> chunk(65536, std::byte{7});
  std::size_t sent = 0;
  a.set_write_timeout(5ms);
  for (;;) {
    std::error_code ec;
    sent += a.write_all(chunk, ec);
    if (ec) {
      EXPECT_EQ(ec, std::errc::timed_out);
      break;
    }
  }
  a.set_write_deadline(unix_stream::clock::time_point::max());
  return sent;
}

// Everything `b` can read before it would wait: what the other end really sent.
std::size_t drain(unix_stream& b) {
  std::vector<std::byte> buf(65536);
  std::size_t got = 0;
  b.set_read_timeout(20ms);
  for (;;) {
    std::error_code ec;
    const std::size_t n = b.read(buf, ec);
    if (ec || n == 0) break;
    got += n;
  }
  return got;
}

TEST_P(ring_test,
       a_send_waiting_for_room_ends_on_its_deadline_close_or_cancel_and_says_how_much_went) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  rounds([](int) {
    // A deadline: write_all reports exactly what the reader will find, no more, no less.
    auto ab = unix_stream::pair();  // clang 14 cannot capture a structured binding
    auto& a = ab.first;
    auto& b = ab.second;
    const std::size_t sent = fill_until_full(a);
    EXPECT_EQ(drain(b), sent);

    // close() from another green thread ends a waiting send with bad_file_descriptor.
    auto cd = unix_stream::pair();
    auto& c = cd.first;
    fill_until_full(c);
    auto closed = weft::spawn([&c] {
      std::vector<std::byte> more(65536);
      std::error_code ec;
      c.write_all(more, ec);
      return ec;
    });
    weft_test::wait_until_parked(1);
    c.close();
    EXPECT_EQ(closed.join(), std::errc::bad_file_descriptor);

    // A cancellation ends it too, and the bytes it reports are the bytes that went.
    auto ef = unix_stream::pair();
    auto& e = ef.first;
    auto& f = ef.second;
    const std::size_t before = fill_until_full(e);
    std::size_t more_sent = 0;
    auto cancelled = weft::spawn([&e, &more_sent] {
      std::vector<std::byte> more(65536);
      std::error_code ec;
      more_sent = e.write_all(more, ec);
      return ec;
    });
    weft_test::wait_until_parked(1);
    cancelled.cancel();
    try {
      EXPECT_EQ(cancelled.join(), std::errc::operation_canceled);
    } catch (const weft::cancelled&) {
      // join() reports the request itself when the green thread ended by it
    }
    EXPECT_EQ(drain(f), before + more_sent);

    // A peer that is gone: broken_pipe, and no SIGPIPE.
    auto gh = unix_stream::pair();
    gh.second.close();
    std::error_code ec;
    gh.first.write_all(bytes("nobody"), ec);
    EXPECT_EQ(ec, std::errc::broken_pipe);
  });
}

TEST_P(ring_test, datagrams_waited_for_on_the_ring_arrive_whole_once_and_from_their_sender) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  rounds([](int round) {
    if (round >= 4) return;
    const std::uint64_t reads = weft::stats().ring_reads, sends = weft::stats().ring_sends;
    // UDP: the echo and the client each wait before the other sends, so every receive is the
    // ring's; each datagram is numbered, and comes back once, whole, from the right address.
    auto server = weft::net::udp_socket::bind("127.0.0.1:0");
    auto client = weft::net::udp_socket::connect(server.local_address().to_string());
    constexpr int count = 300;
    auto echo = weft::spawn([&server] {
      std::byte buf[128];
      weft::net::address from, first;
      for (int i = 0; i < count; ++i) {
        const std::size_t n = server.recv_from(buf, from);
        if (i == 0) first = from;
        EXPECT_EQ(from.to_string(), first.to_string());
        server.send_to(std::span(buf, n), from);
      }
    });
    int whole = 0;
    for (int i = 0; i < count; ++i) {
      const std::string m = "datagram " + std::to_string(i);
      client.send(m);
      char buf[128];
      const std::size_t n = client.recv(std::as_writable_bytes(std::span(buf)));
      whole += std::string_view(buf, n) == m;
    }
    echo.join();
    EXPECT_EQ(whole, count);
    EXPECT_EQ(client.local_address().to_string(),
              [&] {  // what the echo saw as the sender
                weft::net::address from;
                auto waiting = weft::spawn([&] {
                  std::byte b[8];
                  server.recv_from(b, from);
                });
                weft_test::wait_until_parked(1);
                client.send("who");
                waiting.join();
                return from.to_string();
              }());

    // Longer than the buffer while waiting on the ring: reported, the buffer filled, the next
    // datagram intact.
    auto cut = weft::spawn([&server] {
      std::byte small[10];
      weft::net::address from;
      std::error_code ec;
      const std::size_t n = server.recv_from(small, from, ec);
      return std::make_pair(n, ec);
    });
    weft_test::wait_until_parked(1);
    client.send(std::string(1000, 'x'));
    const auto [n, ec] = cut.join();
    EXPECT_EQ(n, 10u);
    EXPECT_EQ(ec, std::errc::message_size);
    client.send("next");
    std::byte buf[16];
    weft::net::address from;
    EXPECT_EQ(server.recv_from(buf, from), 4u);

    // A deadline ends a receive on the ring; the datagram sent after it is not lost.
    server.set_read_timeout(2ms);
    std::error_code late;
    EXPECT_EQ(server.recv_from(buf, from, late), 0u);
    EXPECT_EQ(late, std::errc::timed_out);
    client.send("late");
    server.set_read_deadline(std::chrono::steady_clock::time_point::max());
    EXPECT_EQ(server.recv_from(buf, from), 4u);

    // Unix datagrams, received on the ring.
    auto ud = weft::net::unix_datagram::pair();
    auto& u = ud.first;
    auto& d = ud.second;
    auto got = weft::spawn([&d] {
      std::byte b[64];
      std::size_t total = 0;
      for (int i = 0; i < 50; ++i) total += d.recv(b);
      return total;
    });
    for (int i = 0; i < 50; ++i) {
      weft_test::wait_until_parked(1);
      u.send(std::as_bytes(std::span("0123456789", 10)));
    }
    EXPECT_EQ(got.join(), 500u);
    EXPECT_GE(weft::stats().ring_reads - reads, std::uint64_t{2 * count});
    EXPECT_GE(weft::stats().ring_sends - sends, std::uint64_t{2 * count});
  });
}

TEST_P(ring_test, file_reads_and_writes_go_through_the_ring_with_every_byte) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  const auto path = std::filesystem::temp_directory_path() /
                    ("weft-ring-" + std::to_string(::getpid()) + "-" + std::to_string(GetParam()));
  weft::run(
      [&] {
        const std::uint64_t before = weft::stats().ring_reads;
        std::string data(4 << 20, '\0');
        for (std::size_t i = 0; i < data.size(); ++i)
          data[i] = static_cast<char>((i * 2654435761u) >> 13);
        {
          auto f = weft::fs::file::create(path);
          f.write_all(bytes(data.substr(0, data.size() / 2)));  // at the file's position
          f.write_all_at(bytes(data.substr(data.size() / 2)), data.size() / 2);
        }
        // Read back from several green threads at once, each its own region, and in order.
        constexpr int readers = 8;
        std::atomic<int> matched{0};
        weft::wait_group wg;
        wg.add(readers);
        for (int r = 0; r < readers; ++r) {
          weft::go([&, r] {
            auto f = weft::fs::file::open(path);
            const std::size_t piece = data.size() / readers;
            std::string got(piece, '\0');
            std::size_t at = 0;
            while (at < piece) {
              const std::size_t n =
                  f.read_at(std::as_writable_bytes(std::span(got))
                                .subspan(at, std::min<std::size_t>(65536, piece - at)),
                            r * piece + at);
              ASSERT_GT(n, 0u);
              at += n;
            }
            matched += got == data.substr(r * piece, piece);
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(matched.load(), readers);
        auto f = weft::fs::file::open(path);
        std::string all(data.size() + 1, '\0');
        std::size_t got = 0;
        for (std::size_t n; (n = f.read(std::as_writable_bytes(std::span(all)).subspan(got))) != 0;)
          got += n;
        EXPECT_EQ(got, data.size());
        EXPECT_TRUE(all.compare(0, got, data) == 0);
        // Through the rings (a green thread a spare worker runs, with no ring, uses the pool:
        // the sanitizers' slowness makes the monitor start spares, so no exact count).
        EXPECT_GT(weft::stats().ring_reads - before, 0u);
      },
      ring_cfg());
  std::filesystem::remove(path);
}

// A child process: runs `body` there and returns its exit status (its stderr into `err`).
template <class Body>
int in_child(Body body, std::string& err) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    _exit(body());
  }
  close(fds[1]);
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Echoes one message over a Unix pair and says which backend ran: 0 when it was `expected`.
int echo_under(const char* expected) {
  weft::config c;
  c.workers = 2;
  c.poller = weft::poller_backend::io_uring;
  int status = 1;
  weft::run(
      [&] {
        auto ab = unix_stream::pair();  // clang 14 cannot capture a structured binding
        auto& a = ab.first;
        auto& b = ab.second;
        auto echo = weft::spawn([&b] {
          std::byte buf[64];
          const std::size_t n = b.read(buf);
          b.write_all(std::span(buf, n));
        });
        weft::sleep_for(1ms);  // the echo's read waits first
        a.write_all(bytes("ping"));
        const bool ok = read_string(a, 4) == "ping";
        echo.join();
        if (ok && std::strcmp(weft::stats().poller, expected) == 0) status = 0;
      },
      c);
  return status;
}

TEST(ring_fallback, a_kernel_that_refuses_rings_gets_epoll_and_one_clear_line) {
  std::string err;
  const int status = in_child(
      [] {
        // What a container's seccomp profile does: io_uring_setup fails with EPERM.
        sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
          return 3;
        return echo_under("epoll");
      },
      err);
  EXPECT_EQ(status, 0) << err;
  EXPECT_NE(err.find("weft: io_uring is unavailable here (Operation not permitted); using epoll"),
            std::string::npos)
      << err;
  // One line, not one per ring (the chaos build adds a line of its own, naming its seed).
  std::size_t lines = 0;
  for (std::size_t at = 0; (at = err.find("io_uring", at)) != std::string::npos; ++at) ++lines;
  EXPECT_EQ(lines, 1u) << err;
}

TEST(ring_fallback, a_forked_child_gets_rings_of_its_own) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  if (weft_test::thread_sanitized) GTEST_SKIP() << "TSan cannot follow a fork after threads ran";
  ASSERT_EQ(echo_under("io_uring"), 0);  // the parent ran with rings, and has them no more
  std::string err;
  EXPECT_EQ(in_child([] { return echo_under("io_uring"); }, err), 0) << err;
  EXPECT_EQ(err, "");
}

TEST(ring_fallback, io_uring_is_the_default_and_WEFT_POLLER_chooses_either) {
  if (!weft_test::rings_available()) GTEST_SKIP() << "io_uring is unavailable here";
  const char* outer = std::getenv("WEFT_POLLER");  // the .epoll runs set it: put it back after
  const std::string saved = outer ? outer : "";
  const auto backend = [](const char* env) {
    if (env)
      setenv("WEFT_POLLER", env, 1);
    else
      unsetenv("WEFT_POLLER");
    std::string name;
    weft::config c;
    c.workers = 2;
    weft::run([&] { name = weft::stats().poller; }, c);
    return name;
  };
  EXPECT_EQ(backend(nullptr), "io_uring");
  EXPECT_EQ(backend(""), "io_uring");
  EXPECT_EQ(backend("epoll"), "epoll");
  EXPECT_EQ(backend("io_uring"), "io_uring");
  if (outer)
    setenv("WEFT_POLLER", saved.c_str(), 1);
  else
    unsetenv("WEFT_POLLER");
}

TEST(ring_fallback, an_unknown_backend_name_is_refused) {
  std::string err;
  const int status = in_child(
      [] {
        setenv("WEFT_POLLER", "kqueue", 1);
        try {
          weft::run([] {});
        } catch (const std::invalid_argument& e) {
          return std::strstr(e.what(), "WEFT_POLLER") ? 0 : 2;
        }
        return 1;
      },
      err);
  EXPECT_EQ(status, 0) << err;
}

}  // namespace
