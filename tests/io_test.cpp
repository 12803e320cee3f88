// I/O beyond TCP: UDP (echo verified, truncation, deadlines), Unix streams, listeners and
// datagrams (abstract names, fd passing), pipes (1,000 parked readers, EOF, EPIPE without
// SIGPIPE), a FIFO and a terminal, fd_waiter, files through the blocking pool, name resolution,
// and no descriptor leaked on any error path.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
namespace net = weft::net;
namespace io = weft::io;

class io_test : public weft_test::workers {};
WEFT_WORKER_COUNTS(io_test);

// What every open descriptor points at, but the runtime's own pidfd (opened once, whenever the
// stack scavenger first runs), files in /proc that other threads read for a moment (glibc's
// pthread_getattr_np reads /proc/self/maps) and the directory listing itself.
std::multiset<std::string> open_descriptors() {
  std::multiset<std::string> out;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.' || std::atoi(e->d_name) == dirfd(d)) continue;
    char target[256] = {};
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    if (readlink(link.c_str(), target, sizeof target - 1) < 0) continue;
    if (std::string(target) == "anon_inode:[pidfd]" || std::strncmp(target, "/proc/", 6) == 0)
      continue;
    out.insert(std::string(e->d_name) + " -> " + target);
  }
  closedir(d);
  return out;
}

// Descriptors open now, once the netpoller (an epoll fd and an eventfd, kept for the process's
// life) exists.
std::multiset<std::string> settled_descriptors() {
  { auto p = weft::io::pipe(); }
  return open_descriptors();
}

std::string listing(const std::multiset<std::string>& fds) {
  std::string s;
  for (const auto& f : fds) s += f + "\n";
  return s;
}

#define EXPECT_NO_DESCRIPTOR_LEAKED(before)                                                     \
  do {                                                                                          \
    const auto after = open_descriptors();                                                      \
    EXPECT_EQ(after, before) << "before:\n" << listing(before) << "after:\n" << listing(after); \
  } while (0)

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("weft-io-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span(s));
}

std::string text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// ---- UDP --------------------------------------------------------------------------------------

void udp_echo_every_datagram(const char* bind_addr) {
  constexpr int clients = 16;
  constexpr int per_client = weft_test::sanitized ? 100 : 500;
  auto server = net::udp_socket::bind(bind_addr);
  auto srv = weft::spawn([&] {
    std::byte buf[2048];
    net::address from;
    for (int i = 0; i < clients * per_client; ++i) {
      const std::size_t n = server.recv_from(buf, from);
      server.send_to(std::span(buf, n), from);
    }
  });
  std::atomic<int> verified{0};
  weft::wait_group wg;
  wg.add(clients);
  for (int c = 0; c < clients; ++c)
    weft::go([&, c] {
      auto s = net::udp_socket::connect(server.local_address().to_string());
      std::byte buf[2048];
      for (int i = 0; i < per_client; ++i) {
        // One datagram in flight per client: loopback UDP does not drop it.
        const std::string msg = "client " + std::to_string(c) + " datagram " + std::to_string(i) +
                                std::string(static_cast<std::size_t>(i % 700), 'x');
        EXPECT_EQ(s.send(msg), msg.size());
        const std::size_t n = s.recv(buf);
        if (text(std::span(buf, n)) == msg) ++verified;
      }
      wg.done();
    });
  wg.wait();
  srv.join();
  EXPECT_EQ(verified.load(), clients * per_client);
}

TEST_P(io_test, udp_echo_ipv4_every_datagram_verified) {
  weft::run([] { udp_echo_every_datagram("127.0.0.1:0"); }, cfg());
}

TEST_P(io_test, udp_echo_ipv6_every_datagram_verified) {
  weft::run([] { udp_echo_every_datagram("[::1]:0"); }, cfg());
}

TEST_P(io_test, udp_datagram_larger_than_the_buffer_is_reported_not_cut_silently) {
  weft::run(
      [] {
        auto a = net::udp_socket::bind("127.0.0.1:0");
        auto b = net::udp_socket::connect(a.local_address().to_string());
        b.send(std::string(100, 'a'));
        b.send(std::string("next"));
        std::byte small[10];
        net::address from;
        std::error_code ec;
        EXPECT_EQ(a.recv_from(small, from, ec), 10u);
        EXPECT_EQ(ec, std::errc::message_size);
        EXPECT_EQ(text(std::span(small, 10)), std::string(10, 'a'));
        EXPECT_EQ(from.port(), b.local_address().port());
        // The next datagram is intact, and the throwing form throws.
        std::byte buf[64];
        EXPECT_EQ(text(std::span(buf, a.recv(buf))), "next");
        b.send(std::string(11, 'b'));
        EXPECT_THROW(a.recv(std::span(small)), std::system_error);
      },
      cfg());
}

TEST_P(io_test, udp_read_deadline_and_close_wake_a_parked_receiver) {
  weft::run(
      [] {
        auto s = net::udp_socket::bind("127.0.0.1:0");
        s.set_read_timeout(30ms);
        std::byte buf[16];
        std::error_code ec;
        s.recv(buf, ec);
        EXPECT_EQ(ec, std::errc::timed_out);
        s.set_read_deadline(net::no_deadline);
        auto r = weft::spawn([&] {
          std::error_code e;
          s.recv(buf, e);
          return e;
        });
        weft::sleep_for(10ms);
        s.close();
        EXPECT_EQ(r.join(), std::errc::bad_file_descriptor);
      },
      cfg());
}

TEST_P(io_test, udp_connected_to_a_closed_port_reports_refused) {
  weft::run(
      [] {
        net::address dead;
        {
          auto probe = net::udp_socket::bind("127.0.0.1:0");
          dead = probe.local_address();
        }
        auto s = net::udp_socket::connect(dead.to_string());
        s.set_read_timeout(2s);
        s.send(std::string("anyone?"));
        std::byte buf[16];
        std::error_code ec;
        s.recv(buf, ec);
        EXPECT_EQ(ec, std::errc::connection_refused);
      },
      cfg());
}

// A receive reads one datagram ahead when several are queued: they still come back each once,
// in order, with their own senders and sizes, and a held one longer than the next buffer is
// reported like any other.
TEST_P(io_test, udp_queued_datagrams_come_back_each_once_in_order_with_their_senders) {
  weft::run(
      [] {
        constexpr int per_sender = 60;  // 120 queued: well inside the default receive buffer
        auto receiver = net::udp_socket::bind("127.0.0.1:0");
        const std::string to = receiver.local_address().to_string();
        std::vector<net::udp_socket> senders;
        senders.push_back(net::udp_socket::connect(to));
        senders.push_back(net::udp_socket::connect(to));
        for (int i = 0; i < per_sender; ++i)
          for (int k = 0; k < 2; ++k) senders[k].send(std::to_string(k) + ":" + std::to_string(i));
        int next[2] = {0, 0};
        for (int i = 0; i < 2 * per_sender; ++i) {
          char buf[32];
          net::address from;
          const std::size_t n = receiver.recv_from(std::as_writable_bytes(std::span(buf)), from);
          const std::string text(buf, n);
          const int k = text[0] - '0';
          ASSERT_TRUE(k == 0 || k == 1) << text;
          EXPECT_EQ(from.to_string(), senders[k].local_address().to_string());
          EXPECT_EQ(text.substr(2), std::to_string(next[k]++));
        }
        EXPECT_EQ(next[0], per_sender);
        EXPECT_EQ(next[1], per_sender);

        // Two large datagrams: the second is held by the first receive, then returned into a
        // buffer too small for it, cut and reported.
        const std::string big(1000, 'b');
        senders[0].send(std::string(1000, 'a'));
        senders[0].send(big);
        std::byte large[2000];
        EXPECT_EQ(receiver.recv(large), 1000u);
        std::byte small[100];
        std::error_code ec;
        EXPECT_EQ(receiver.recv(small, ec), 100u);
        EXPECT_EQ(ec, std::errc::message_size);
        EXPECT_EQ(std::memcmp(small, big.data(), 100), 0);

        // Nothing left: a receive now times out rather than returning anything twice.
        receiver.set_read_timeout(20ms);
        EXPECT_EQ(receiver.recv(large, ec), 0u);
        EXPECT_EQ(ec, std::errc::timed_out);
      },
      cfg());
}

TEST_P(io_test, udp_two_green_threads_receiving_at_once_is_a_logic_error) {
  weft::run(
      [] {
        auto s = net::udp_socket::bind("127.0.0.1:0");
        auto first = weft::spawn([&] {
          std::byte buf[16];
          return s.recv(buf);
        });
        weft_test::wait_until_parked(1);  // the first receiver is parked
        std::byte buf[16];
        EXPECT_THROW(s.recv(buf), std::logic_error);
        auto c = net::udp_socket::connect(s.local_address().to_string());
        c.send(std::string("x"));
        EXPECT_EQ(first.join(), 1u);  // the first receive was not disturbed
      },
      cfg());
}

// ---- Unix sockets ----------------------------------------------------------------------------

void unix_echo(const std::string& path) {
  constexpr int clients = 8;
  auto l = net::unix_listener::bind(path);
  auto acceptor = weft::spawn([&] {
    for (int i = 0; i < clients; ++i)
      weft::go([s = l.accept()]() mutable {
        std::byte buf[4096];
        for (std::size_t n; (n = s.read(buf)) > 0;) s.write_all(std::span(buf, n));
      });
  });
  std::atomic<int> ok{0};
  weft::wait_group wg;
  wg.add(clients);
  for (int c = 0; c < clients; ++c)
    weft::go([&, c] {
      auto s = net::unix_stream::connect(path);
      std::mt19937 rng(static_cast<unsigned>(c));
      std::string sent(200'000, '\0');
      for (auto& ch : sent) ch = static_cast<char>(rng());
      auto writer = weft::spawn([&] {
        s.write_all(sent);
        s.shutdown();
      });
      std::string got;
      char buf[8192];
      for (std::size_t n; (n = s.read(std::span(buf))) > 0;) got.append(buf, n);
      writer.join();
      if (got == sent) ++ok;
      wg.done();
    });
  wg.wait();
  acceptor.join();
  EXPECT_EQ(ok.load(), clients);
}

TEST_P(io_test, unix_stream_echo_on_a_path_removes_its_file) {
  const std::string path = temp_path("echo.sock");
  weft::run([&] { unix_echo(path); }, cfg());
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_P(io_test, unix_stream_echo_on_an_abstract_name) {
  weft::run([&] { unix_echo("@weft-io-test-" + std::to_string(::getpid())); }, cfg());
}

TEST_P(io_test, unix_errors_are_clear_and_leak_nothing) {
  const std::string path = temp_path("errors.sock");
  weft::run(
      [&] {
        const auto before = settled_descriptors();
        std::error_code ec;
        net::unix_stream::connect(temp_path("nobody-here.sock"), ec);
        EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
        {
          auto l = net::unix_listener::bind(path);
          net::unix_listener::bind(path, SOMAXCONN, ec);  // the file is there
          EXPECT_EQ(ec, std::errc::address_in_use);
        }
        // A socket file nobody listens on any more: refused.
        { auto d = net::unix_datagram::bind(path); }
        net::unix_stream::connect(path, ec);
        EXPECT_EQ(ec, std::errc::connection_refused);
        std::filesystem::remove(path);
        net::unix_listener::bind(std::string(200, 'x'), SOMAXCONN, ec);
        EXPECT_EQ(ec, std::errc::filename_too_long);
        EXPECT_THROW(net::unix_stream::connect(temp_path("nobody-here.sock")), std::system_error);
        EXPECT_NO_DESCRIPTOR_LEAKED(before);
      },
      cfg());
}

// Out of descriptors, a Unix listener's accept backs off (5 ms doubling) as a TCP one does,
// then serves the connection that waited once a descriptor is free again.
TEST_P(io_test, unix_accept_backs_off_when_out_of_descriptors_and_recovers) {
  // UBSan probes a new thread's memory through a pipe: see net_test's twin of this test.
  if (weft_test::sanitized && GetParam() > 1)
    GTEST_SKIP() << "UBSan's own pipe probe needs a free descriptor";
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  const std::string path = temp_path("emfile.sock");
  weft::run(
      [&] {
        auto l = net::unix_listener::bind(path);
        int highest = 0;
        for (int fd = 0; fd < static_cast<int>(saved.rlim_cur); ++fd)
          if (fcntl(fd, F_GETFD) != -1) highest = fd;
        rlimit low = saved;
        low.rlim_cur = static_cast<rlim_t>(highest) + 32;
        ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
        auto client = net::unix_stream::connect(path);  // queued in the backlog
        std::vector<int> hogs;
        for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) hogs.push_back(fd);
        ASSERT_EQ(errno, EMFILE);
        auto server = weft::spawn([&] {
          auto s = l.accept();
          s.write_all(std::string_view("served"));
        });
        weft::sleep_for(300ms);
        const std::uint64_t during = l.resource_backoffs();
        for (int fd : hogs) ::close(fd);
        server.join();
        char got[6];
        std::size_t n = 0;
        while (n < sizeof got) n += client.read(std::span(got).subspan(n));
        EXPECT_EQ(std::string(got, n), "served");
        // 5, 10, 20, 40, 80, 160 ms: a handful of retries in 300 ms, not a spin.
        EXPECT_GE(during, 1u);
        EXPECT_LE(during, 8u);
      },
      cfg());
  setrlimit(RLIMIT_NOFILE, &saved);
}

TEST_P(io_test, unix_datagram_echo_with_names_and_pairs) {
  const std::string server_path = "@weft-dgram-" + std::to_string(::getpid());
  weft::run(
      [&] {
        constexpr int messages = 2000;
        auto server = net::unix_datagram::bind(server_path);
        auto srv = weft::spawn([&] {
          std::byte buf[512];
          std::string from;
          for (int i = 0; i < messages; ++i) {
            const std::size_t n = server.recv_from(buf, from);
            server.send_to(std::span(buf, n), from);
          }
        });
        auto client = net::unix_datagram::bind(server_path + "-client");
        std::byte buf[512];
        int verified = 0;
        for (int i = 0; i < messages; ++i) {
          const std::string msg = "message " + std::to_string(i);
          client.send_to(bytes(msg), server_path);
          std::string from;
          const std::size_t n = client.recv_from(buf, from);
          verified += text(std::span(buf, n)) == msg && from == server_path;
        }
        srv.join();
        EXPECT_EQ(verified, messages);
        // A pair: messages keep their boundaries; a long one is reported.
        auto [a, b] = net::unix_datagram::pair();
        a.send(std::string("one"));
        a.send(std::string(300, 'z'));
        EXPECT_EQ(text(std::span(buf, b.recv(buf))), "one");
        std::error_code ec;
        std::byte small[100];
        EXPECT_EQ(b.recv(small, ec), 100u);
        EXPECT_EQ(ec, std::errc::message_size);
      },
      cfg());
}

TEST_P(io_test, unix_stream_passes_descriptors) {
  weft::run(
      [] {
        const auto before = settled_descriptors();
        auto [a, b] = net::unix_stream::pair();
        auto [r, w] = io::pipe();
        // Pass the pipe's write end; the receiver writes through its own copy.
        const int fds[] = {w.native_handle()};
        auto sender = weft::spawn([&] { a.send_fds(std::string_view("fd!"), fds); });
        std::vector<int> got;
        char buf[16];
        const std::size_t n = b.recv_fds(std::as_writable_bytes(std::span(buf)), got);
        sender.join();
        EXPECT_EQ(std::string(buf, n), "fd!");
        ASSERT_EQ(got.size(), 1u);
        EXPECT_NE(got[0], w.native_handle());
        EXPECT_TRUE(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
        {
          io::stream passed = io::stream::adopt(got[0]);
          passed.write_all(std::string_view("through the copy"));
        }
        w.close();
        std::string all;
        for (std::size_t k; (k = r.read(std::span(buf))) > 0;) all.append(buf, k);
        EXPECT_EQ(all, "through the copy");
        EXPECT_EQ(a.peer_credentials().pid, ::getpid());
        EXPECT_EQ(a.peer_path(), "");
        std::error_code ec;
        a.send_fds(std::span<const std::byte>(), fds, ec);  // no byte to carry them
        EXPECT_EQ(ec, std::errc::invalid_argument);
        a.close();
        b.close();
        r.close();
        EXPECT_NO_DESCRIPTOR_LEAKED(before);
      },
      cfg());
}

// ---- pipes and fd_waiter ---------------------------------------------------------------------

TEST_P(io_test, a_thousand_green_threads_each_parked_on_its_own_pipe) {
  constexpr int n = weft_test::thread_sanitized ? 500 : 1000;
  weft::run(
      [] {
        std::vector<std::pair<io::stream, io::stream>> pipes;
        for (int i = 0; i < n; ++i) pipes.push_back(io::pipe());
        std::vector<weft::join_handle<int>> readers;
        for (int i = 0; i < n; ++i)
          readers.push_back(weft::spawn([&, i] {
            char buf[16];
            const std::size_t k = pipes[i].first.read(std::span(buf));
            return std::stoi(std::string(buf, k));
          }));
        weft::sleep_for(20ms);  // all parked; the workers are free
        for (int i = n - 1; i >= 0; --i) pipes[i].second.write_all(std::to_string(i * 7));
        long sum = 0;
        for (int i = 0; i < n; ++i) {
          const int v = readers[i].join();
          EXPECT_EQ(v, i * 7);
          sum += v;
        }
        EXPECT_EQ(sum, 7L * n * (n - 1) / 2);
      },
      cfg());
}

TEST_P(io_test, pipe_end_of_stream_and_broken_pipe_without_sigpipe) {
  weft::run(
      [] {
        {
          auto [r, w] = io::pipe();
          auto reader = weft::spawn([&] {
            std::string all;
            char buf[4096];
            for (std::size_t k; (k = r.read(std::span(buf))) > 0;) all.append(buf, k);
            return all;
          });
          const std::string big(1 << 20, 'p');  // more than the pipe holds: the writer waits
          w.write_all(big);
          w.close();
          EXPECT_EQ(reader.join(), big);
        }
        auto [r, w] = io::pipe();
        r.close();
        std::error_code ec;
        EXPECT_EQ(w.write_all(std::string_view("nobody reads"), ec), 0u);
        EXPECT_EQ(ec, std::errc::broken_pipe);  // and the process is still here
        EXPECT_THROW(w.write_all(std::string_view("again")), std::system_error);
      },
      cfg());
}

// A FIFO and a terminal, adopted as streams: a reader parks until the writer's bytes come.
TEST_P(io_test, streams_over_a_fifo_and_a_terminal) {
  const std::string fifo = temp_path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  weft::run(
      [&] {
        const auto before = settled_descriptors();
        {
          // O_NONBLOCK lets the read end open before any writer exists (a read before the first
          // writer opens would be end of stream, as in Go).
          auto r = io::stream::adopt(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
          auto w = io::stream::adopt(::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
          auto reader = weft::spawn([&] {
            std::string got;
            char buf[64];
            for (std::size_t n; (n = r.read(std::span(buf))) > 0;) got.append(buf, n);
            return got;  // until the writer closes
          });
          weft::sleep_for(10ms);  // the reader is parked on an empty FIFO
          w.write_all("through the fifo");
          w.close();
          EXPECT_EQ(reader.join(), "through the fifo");
        }
        {
          // A pseudo-terminal in raw mode: what is written to the master is read on the slave.
          const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
          ASSERT_GE(master, 0);
          ASSERT_EQ(::grantpt(master), 0);
          ASSERT_EQ(::unlockpt(master), 0);
          const int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
          ASSERT_GE(slave, 0);
          termios raw{};
          ASSERT_EQ(::tcgetattr(slave, &raw), 0);
          ::cfmakeraw(&raw);
          ASSERT_EQ(::tcsetattr(slave, TCSANOW, &raw), 0);
          auto m = io::stream::adopt(master);
          auto s = io::stream::adopt(slave);
          auto reader = weft::spawn([&] {
            std::string got;
            char buf[64];
            while (got.size() < 12) got.append(buf, s.read(std::span(buf)));
            return got;
          });
          weft::sleep_for(10ms);  // parked on the terminal
          m.write_all("typed keys\r\n");
          EXPECT_EQ(reader.join(), "typed keys\r\n");
        }
        EXPECT_NO_DESCRIPTOR_LEAKED(before);
      },
      cfg());
  std::filesystem::remove(fifo);
}

TEST_P(io_test, stream_refuses_a_regular_file_and_closes_it) {
  const std::string path = temp_path("regular");
  weft::run(
      [&] {
        weft::fs::write_file(path, std::string_view("x"));
        const auto before = settled_descriptors();
        std::error_code ec;
        io::stream::adopt(::open(path.c_str(), O_RDONLY | O_CLOEXEC), ec);
        EXPECT_EQ(ec, std::errc::operation_not_permitted);
        EXPECT_NO_DESCRIPTOR_LEAKED(before);
      },
      cfg());
  std::filesystem::remove(path);
}

TEST_P(io_test, fd_waiter_waits_times_out_and_leaves_the_descriptor_open) {
  weft::run(
      [] {
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
        {
          io::fd_waiter ready(fds[0]);
          std::error_code ec;
          ready.wait_readable(io::clock::now() + 20ms, ec);
          EXPECT_EQ(ec, std::errc::timed_out);
          auto writer = weft::spawn([&] {
            weft::sleep_for(5ms);
            EXPECT_EQ(::write(fds[1], "r", 1), 1);
          });
          char c = 0;
          while (::read(fds[0], &c, 1) != 1) ready.wait_readable();
          EXPECT_EQ(c, 'r');
          writer.join();
          auto parked = weft::spawn([&] {
            std::error_code e;
            ready.wait_readable(io::no_deadline, e);
            return e;
          });
          weft::sleep_for(5ms);
          ready.close();
          EXPECT_EQ(parked.join(), std::errc::bad_file_descriptor);
        }
        EXPECT_NE(fcntl(fds[0], F_GETFD), -1);  // still the program's
        // A blocking descriptor is refused: the waiter could never see EAGAIN.
        int blocking[2];
        ASSERT_EQ(::pipe2(blocking, O_CLOEXEC), 0);
        EXPECT_THROW(io::fd_waiter{blocking[0]}, std::invalid_argument);
        for (int fd : {fds[0], fds[1], blocking[0], blocking[1]}) ::close(fd);
      },
      cfg());
}

// ---- files -----------------------------------------------------------------------------------

TEST_P(io_test, files_of_64_mib_while_the_workers_stay_free) {
  const std::string path = temp_path("big.bin");
  const std::size_t size = (weft_test::sanitized ? 16u : 64u) << 20;
  weft::run(
      [&] {
        std::string data(size, '\0');
        std::mt19937_64 rng(42);
        for (std::size_t i = 0; i < size; i += 8) {
          const std::uint64_t v = rng();
          std::memcpy(data.data() + i, &v, 8);
        }
        // A probe green thread counts its turns while the file calls are in flight: with the
        // calls on the blocking pool it keeps running even on one worker.
        std::atomic<bool> in_flight{true}, stop{false};
        std::atomic<long> turns_during{0};
        std::int64_t worst_gap_us = 0;
        auto probe = weft::spawn([&] {
          auto last = std::chrono::steady_clock::now();
          while (!stop) {
            weft::sleep_for(1ms);
            const auto now = std::chrono::steady_clock::now();
            worst_gap_us = std::max<std::int64_t>(
                worst_gap_us,
                std::chrono::duration_cast<std::chrono::microseconds>(now - last).count());
            last = now;
            if (in_flight) ++turns_during;
          }
        });
        weft::sleep_for(2ms);
        weft::fs::write_file(path, bytes(data));
        const std::string back = weft::fs::read_file(path);
        in_flight = false;
        stop = true;
        probe.join();
        EXPECT_EQ(back.size(), data.size());
        EXPECT_TRUE(back == data);
        EXPECT_GT(turns_during.load(), 0);
        EXPECT_EQ(weft::fs::stat(path).st_size, static_cast<off_t>(size));
        std::printf("64 MiB write+read: probe turns %ld, worst probe gap %lld us\n",
                    turns_during.load(), static_cast<long long>(worst_gap_us));
        // Positional reads and writes from several green threads at once.
        auto f = weft::fs::file::open(path, {.read = true, .write = true});
        weft::wait_group wg;
        wg.add(8);
        std::atomic<int> ok{0};
        for (int i = 0; i < 8; ++i)
          weft::go([&, i] {
            const std::uint64_t off = static_cast<std::uint64_t>(i) << 20;
            std::string chunk(4096, static_cast<char>('A' + i));
            f.write_all_at(bytes(chunk), off);
            std::string again(4096, '\0');
            EXPECT_EQ(f.read_at(std::as_writable_bytes(std::span(again)), off), 4096u);
            ok += again == chunk;
            wg.done();
          });
        wg.wait();
        EXPECT_EQ(ok.load(), 8);
        EXPECT_EQ(f.size(), size);
      },
      cfg());
  std::filesystem::remove(path);
}

TEST_P(io_test, file_errors_name_the_path_and_leak_nothing) {
  weft::run(
      [] {
        const auto before = settled_descriptors();
        const std::string missing = temp_path("missing/nothing");
        std::error_code ec;
        weft::fs::read_file(missing, ec);
        EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
        try {
          weft::fs::file::open(missing);
          ADD_FAILURE() << "opened a missing file";
        } catch (const std::system_error& e) {
          EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
        }
        const std::string exists = temp_path("exists");
        weft::fs::write_file(exists, std::string_view("abc"));
        weft::fs::file::open(exists, {.write = true, .create = true, .exclusive = true}, ec);
        EXPECT_EQ(ec, std::errc::file_exists);
        {
          auto f = weft::fs::file::open(exists, {.read = false, .write = true, .append = true});
          f.write_all("def");
        }
        EXPECT_EQ(weft::fs::read_file(exists), "abcdef");
        EXPECT_EQ(weft::fs::read_file("/proc/self/comm").empty(), false);  // size 0 in stat
        std::filesystem::remove(exists);
        EXPECT_NO_DESCRIPTOR_LEAKED(before);
      },
      cfg());
}

// ---- names -----------------------------------------------------------------------------------

TEST_P(io_test, resolve_localhost_and_a_name_that_does_not_exist) {
  weft::run(
      [] {
        const auto found = net::resolve("localhost", 80);
        ASSERT_FALSE(found.empty());
        std::set<std::string> names;
        for (const auto& a : found) names.insert(a.to_string());
        EXPECT_TRUE(names.count("127.0.0.1:80") || names.count("[::1]:80"));
        // Connect by name: every address is tried until one answers.
        auto l = net::tcp_listener::bind("127.0.0.1:0");
        auto server = weft::spawn([&] { return l.accept().peer_address().port() != 0; });
        auto c = net::tcp_stream::connect("localhost:" + std::to_string(l.port()), 5s);
        EXPECT_TRUE(server.join());
        // A name that cannot exist (RFC 6761 reserves .invalid): a clear error, bounded in time.
        const auto start = std::chrono::steady_clock::now();
        std::error_code ec;
        const auto none = net::resolve("no-such-host.invalid", 80, 3s, ec);
        EXPECT_TRUE(none.empty());
        EXPECT_TRUE(ec) << "resolved a name that does not exist";
        EXPECT_TRUE(ec.category().name() == std::string("getaddrinfo") ||
                    ec == std::errc::timed_out)
            << ec.message();
        EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
        EXPECT_THROW(net::tcp_stream::connect("no-such-host.invalid:80", 3s), std::system_error);
      },
      cfg());
}

TEST_P(io_test, a_resolve_that_outlives_its_timeout_returns_timed_out) {
  weft::run(
      [] {
        // Zero time left: the lookup still runs (on the pool) but the caller does not wait.
        std::error_code ec;
        net::resolve("localhost", 80, 0ns, ec);
        EXPECT_EQ(ec, std::errc::timed_out);
      },
      cfg());
}

}  // namespace
