// pipegen: a closed-loop generator for the TechEmpower "plaintext" shape that costs less per
// request than the servers it loads, so one core of it can saturate one core of server. wrk
// parses every response with a general HTTP parser and runs Lua per batch: at 16 pipelined
// requests per write it saturates its core at ~1.2M req/s here while weft, Go and Tokio each
// leave a third of theirs idle. pipegen knows the one reply the benchmark servers send
// (bench/http_session.hpp) and checks every byte of every response against it, which is all the
// parsing this shape needs. One thread, no weft: it measures weft without sharing its runtime.
// Kept-alive connections run on io_uring (pipegen_uring.cpp: no system call per send or recv);
// --churn on plain epoll, its cost being the handshakes.
//
//   pipegen --port P [--connections 256] [--depth 16] [--duration 5] [--warmup 1] [--echo]
//           [--churn] [--epoll]
//
// --echo loads a TCP echo server instead (bench/tcp_echo): each request is a 64-byte message
// and its reply the same 64 bytes back. --churn opens a new connection for every batch
// (connection churn: the server's accept path): each connection connects without blocking,
// sends its batch, reads the replies and closes; req/s then counts requests on fresh
// connections. --epoll runs the kept-alive shapes on the epoll loop too (for comparison).
// Each connection writes `depth` requests (TechEmpower's headers) in one write, reads until
// `depth` complete replies have arrived, then writes the next batch. The last line is
// machine-readable: "pipegen rps=R requests=N errors=E batch_p99_ms=P seconds=S". A reply that
// differs from the expected bytes, a reset or a close is an error: the connection is dropped.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "pipegen.hpp"

namespace {

using pipegen::steady;

constexpr std::string_view http_request =
    "GET /plaintext HTTP/1.1\r\nHost: localhost\r\nAccept: "
    "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n"
    "Connection: keep-alive\r\n\r\n";
constexpr std::string_view http_reply =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

struct connection {
  int fd = -1;
  bool connecting = false;   // --churn: the handshake has not finished
  std::size_t expected = 0;  // reply bytes still due for the batch in flight
  std::size_t offset = 0;    // position within the reply the next byte must match
  steady::time_point sent;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: pipegen --port P [--connections 256] [--depth 16] [--duration 5] "
               "[--warmup 1] [--echo] [--churn] [--epoll]\n");
  std::exit(2);
}

// The machine-readable last line, from either loop.
int report(pipegen::totals& t, double duration) {
  double p99 = 0;
  if (!t.batch_ms.empty()) {
    const std::size_t at = t.batch_ms.size() * 99 / 100;
    std::nth_element(t.batch_ms.begin(), t.batch_ms.begin() + static_cast<std::ptrdiff_t>(at),
                     t.batch_ms.end());
    p99 = t.batch_ms[at];
  }
  std::printf("pipegen rps=%.2f requests=%lld errors=%lld batch_p99_ms=%.3f seconds=%.1f\n",
              static_cast<double>(t.requests) / duration, t.requests, t.errors, p99, duration);
  return t.errors != 0;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, connections = 256, depth = 16;
  double duration = 5, warmup = 1;
  bool churn = false, use_epoll = false;
  std::string_view request = http_request, reply = http_reply;
  static const std::string echo_message(64, 'e');
  for (int i = 1; i < argc; i += 2) {
    const std::string_view a = argv[i];
    if (a == "--echo" || a == "--churn" || a == "--epoll") {
      if (a == "--echo")
        request = reply = echo_message;
      else if (a == "--churn")
        churn = true;
      else
        use_epoll = true;
      --i;  // a flag: no value
      continue;
    }
    if (i + 1 >= argc) usage();
    const char* v = argv[i + 1];
    if (a == "--port")
      port = std::atoi(v);
    else if (a == "--connections")
      connections = std::atoi(v);
    else if (a == "--depth")
      depth = std::atoi(v);
    else if (a == "--duration")
      duration = std::atof(v);
    else if (a == "--warmup")
      warmup = std::atof(v);
    else
      usage();
  }
  if (port <= 0 || connections <= 0 || depth <= 0) usage();

  std::string batch;
  for (int i = 0; i < depth; ++i) batch += request;
  const std::size_t batch_reply = reply.size() * static_cast<std::size_t>(depth);
  const auto seconds = [](double s) {
    return std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(s));
  };
  pipegen::totals totals;
  totals.batch_ms.reserve(1 << 20);
  if (!churn && !use_epoll) {
    pipegen::shape shape{port, connections, depth, batch, reply, {}, {}};
    shape.counting_from = steady::now() + seconds(warmup);
    shape.end = shape.counting_from + seconds(duration);
    if (!pipegen::run_uring(shape, totals)) return 1;
    return report(totals, duration);
  }

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<connection> conns(static_cast<std::size_t>(connections));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Opens connection `i`: with --churn without waiting for the handshake (a connect that blocked
  // on a full accept queue would stall every other connection for a second).
  std::uint32_t opened = 0;
  auto open_connection = [&](std::size_t i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (churn ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) {
      std::perror("pipegen: socket");
      std::exit(1);
    }
    const int one = 1;
    if (churn) {
      // Each closed connection leaves its port in TIME_WAIT for a minute: spread them over 64
      // loopback source addresses (the port picked at connect, not bind) to never run out.
      sockaddr_in from{};
      from.sin_family = AF_INET;
      from.sin_addr.s_addr = htonl(INADDR_LOOPBACK + static_cast<std::uint32_t>(opened++ % 64));
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
        std::perror("pipegen: bind");
        std::exit(1);
      }
    }
    const bool connected = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (!connected && !(churn && errno == EINPROGRESS)) {
      std::perror("pipegen: connect");
      std::exit(1);
    }
    const bool connecting = !connected;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    conns[i].fd = fd;
    conns[i].connecting = connecting;
    conns[i].offset = 0;
    epoll_event ev{};
    ev.events = conns[i].connecting ? EPOLLOUT : EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  };
  for (std::size_t i = 0; i < conns.size(); ++i) open_connection(i);

  long long& requests = totals.requests;
  long long& errors = totals.errors;
  std::vector<double>& batch_ms = totals.batch_ms;
  const auto counting_from = steady::now() + seconds(warmup);
  const auto end = counting_from + seconds(duration);
  auto drop = [&](connection& c) {
    ++errors;
    close(c.fd);
    c.fd = -1;
  };
  auto send_batch = [&](connection& c) {
    // A batch of a few KiB goes out in one write on an idle connection; a short write is
    // finished before reading (the server answers only complete requests anyway).
    std::size_t done = 0;
    while (done < batch.size()) {
      const ssize_t n = send(c.fd, batch.data() + done, batch.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        pollfd p{c.fd, POLLOUT, 0};
        const int ready = poll(&p, 1, 1000);
        if (ready == 0 || (ready < 0 && errno != EINTR)) return drop(c);
      } else {
        return drop(c);
      }
    }
    c.expected = batch_reply;
    c.sent = steady::now();
  };
  for (auto& c : conns)
    if (!c.connecting) send_batch(c);

  std::vector<epoll_event> events(conns.size());
  char buf[64 * 1024];
  for (auto now = steady::now(); now < end; now = steady::now()) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int k = 0; k < n; ++k) {
      const std::size_t i = events[static_cast<std::size_t>(k)].data.u64;
      connection& c = conns[i];
      if (c.fd < 0) continue;
      if (c.connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
          drop(c);
          continue;
        }
        c.connecting = false;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        send_batch(c);
        continue;
      }
      const ssize_t got = recv(c.fd, buf, sizeof buf, 0);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0 || static_cast<std::size_t>(got) > c.expected) {
        drop(c);
        continue;
      }
      bool same = true;
      for (ssize_t i = 0; i < got && same; ++i) {
        same = buf[i] == reply[c.offset];
        if (++c.offset == reply.size()) c.offset = 0;
      }
      if (!same) {
        drop(c);
        continue;
      }
      c.expected -= static_cast<std::size_t>(got);
      if (c.expected != 0) continue;
      const auto done = steady::now();
      if (c.sent >= counting_from && done < end) {
        requests += depth;
        batch_ms.push_back(std::chrono::duration<double, std::milli>(done - c.sent).count());
      }
      if (churn) {
        close(c.fd);
        open_connection(i);
        if (!c.connecting) send_batch(c);
        continue;
      }
      send_batch(c);
    }
  }
  for (auto& c : conns)
    if (c.fd >= 0) close(c.fd);
  return report(totals, duration);
}
