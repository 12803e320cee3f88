// pipegen's io_uring loop, for the kept-alive shapes. On this project's VMs a system call costs
// ~1 us on entry and exit alone, so an epoll loop pays ~3 us per batch (a recv, a send, its
// share of epoll_wait) beside the TCP work itself, as much as the servers it loads pay: one
// core of it could not saturate one core of the fastest server. Here every send and recv is an
// SQE, and one io_uring_enter submits them and collects completions for all connections at once.
// The ring is single-issuer with deferred task work, so completions run here, on the generator's
// own core, when it asks for them.
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

#include "pipegen.hpp"

namespace pipegen {
namespace {

constexpr std::size_t recv_buffer = 16 * 1024;

struct connection {
  int fd = -1;
  bool dead = false;
  std::size_t unsent = 0;    // bytes of the batch in flight not yet written
  std::size_t expected = 0;  // reply bytes still due for the batch in flight
  std::size_t offset = 0;    // position within the reply the next byte must match
  steady::time_point sent;
  std::unique_ptr<char[]> buf;
};

enum op : std::uint64_t { op_send = 0, op_recv = 1 };

class loop {
 public:
  loop(const shape& s, totals& out) : s_(s), out_(out) {}
  ~loop() {
    for (auto& c : conns_)
      if (c.fd >= 0) close(c.fd);
    if (ring_ok_) io_uring_queue_exit(&ring_);
  }

  bool run() {
    if (!open_ring() || !open_connections()) return false;
    auto now = steady::now();
    for (std::size_t i = 0; i < conns_.size(); ++i) send_batch(i, now);
    while (now < s_.end) {
      __kernel_timespec wait{0, 100'000'000};
      io_uring_cqe* first = nullptr;
      const int rc = io_uring_submit_and_wait_timeout(&ring_, &first, 1, &wait, nullptr);
      if (rc < 0 && rc != -ETIME && rc != -EINTR) {
        std::fprintf(stderr, "pipegen: io_uring_submit_and_wait: %s\n", std::strerror(-rc));
        return false;
      }
      now = steady::now();
      unsigned head, seen = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        complete(cqe->user_data, cqe->res, now);
      }
      io_uring_cq_advance(&ring_, seen);
    }
    return true;
  }

 private:
  bool open_ring() {
    const unsigned entries = 2 * static_cast<unsigned>(s_.connections) + 64;
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init_params(entries, &ring_, &p);
    if (rc == -EINVAL) {  // a kernel before 6.1
      p = io_uring_params{};
      rc = io_uring_queue_init_params(entries, &ring_, &p);
    }
    if (rc < 0) {
      std::fprintf(stderr, "pipegen: io_uring_queue_init: %s\n", std::strerror(-rc));
      return false;
    }
    ring_ok_ = true;
    return true;
  }

  bool open_connections() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(s_.port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    conns_.resize(static_cast<std::size_t>(s_.connections));
    for (auto& c : conns_) {
      c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c.fd < 0 || connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        std::perror("pipegen: connect");
        return false;
      }
      const int one = 1;
      setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      c.buf = std::make_unique<char[]>(recv_buffer);
    }
    return true;
  }

  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {  // full: hand what is queued to the kernel and take a fresh one
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void send_rest(std::size_t i) {
    connection& c = conns_[i];
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_send(sqe, c.fd, s_.batch.data() + (s_.batch.size() - c.unsent), c.unsent,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, i << 1 | op_send);
  }

  void post_recv(std::size_t i) {
    connection& c = conns_[i];
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_recv(sqe, c.fd, c.buf.get(), recv_buffer, 0);
    sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;  // the reply is never there yet: wait for it
    io_uring_sqe_set_data64(sqe, i << 1 | op_recv);
  }

  // The batch and a recv for its replies go out together: nothing waits for the send's CQE.
  void send_batch(std::size_t i, steady::time_point now) {
    connection& c = conns_[i];
    c.unsent = s_.batch.size();
    c.expected = s_.reply.size() * static_cast<std::size_t>(s_.depth);
    c.sent = now;
    send_rest(i);
    post_recv(i);
  }

  void drop(connection& c) {
    if (c.dead) return;
    c.dead = true;
    ++out_.errors;
    shutdown(c.fd, SHUT_RDWR);  // ends its other operation in flight, which is then ignored
  }

  void complete(std::uint64_t data, int res, steady::time_point now) {
    const std::size_t i = data >> 1;
    connection& c = conns_[i];
    if (c.dead) return;
    if ((data & 1) == op_send) {
      if (res <= 0) return drop(c);
      c.unsent -= static_cast<std::size_t>(res);
      if (c.unsent != 0) send_rest(i);  // a short write: the rest, before any later batch
      return;
    }
    if (res <= 0 || static_cast<std::size_t>(res) > c.expected) return drop(c);
    const char* got = c.buf.get();
    for (int k = 0; k < res; ++k) {
      if (got[k] != s_.reply[c.offset]) return drop(c);
      if (++c.offset == s_.reply.size()) c.offset = 0;
    }
    c.expected -= static_cast<std::size_t>(res);
    if (c.expected != 0) return post_recv(i);
    if (c.sent >= s_.counting_from && now < s_.end) {
      out_.requests += s_.depth;
      out_.batch_ms.push_back(std::chrono::duration<double, std::milli>(now - c.sent).count());
    }
    send_batch(i, now);
  }

  const shape& s_;
  totals& out_;
  io_uring ring_{};
  bool ring_ok_ = false;
  std::vector<connection> conns_;
};

}  // namespace

bool run_uring(const shape& s, totals& out) {
  loop l(s, out);
  return l.run();
}

}  // namespace pipegen
