#include "ring.hpp"

#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string_view>

#include "runtime/chaos.hpp"

namespace weft::detail {
namespace {

// user_data: an op's address (8-aligned), or one of these in the low bits.
constexpr std::uint64_t tag_ignore = 1;  // a cancel's own completion
constexpr std::uint64_t tag_wake = 2;    // the wake eventfd's read
constexpr std::uint64_t tag_epoll = 3;   // the process's epoll became readable
constexpr std::uint64_t tag_accept = 4;  // a ring_acceptor's address, with this added
// Room for a read from each of thousands of connections without overflowing the completion
// queue (the kernel then keeps completions on a slower list) or submitting early.
constexpr unsigned ring_entries = 1024;
constexpr unsigned completion_entries = 8192;
constexpr unsigned max_reaped = 128;  // completions taken in per pass, as epoll's events

int setup(io_uring* ring) noexcept {
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
            IORING_SETUP_CQSIZE;
  p.cq_entries = completion_entries;
  return io_uring_queue_init_params(ring_entries, ring, &p);
}

}  // namespace

const char* poller_name(poller_kind k) noexcept {
  return k == poller_kind::io_uring ? "io_uring" : "epoll";
}

poller_kind choose_poller(const char* requested) {
  std::string_view want = requested ? requested : "auto";
  if (want == "auto") {
    const char* env = std::getenv("WEFT_POLLER");
    want = env && *env ? env : "io_uring";  // docs/results.md, "epoll or io_uring"
    if (want != "epoll" && want != "io_uring")
      throw std::invalid_argument("weft: WEFT_POLLER must be \"epoll\" or \"io_uring\"");
  }
  if (want == "epoll") return poller_kind::epoll;
  // Probed at each start rather than once: a forked child may live under other rules (a
  // seccomp filter installed after the fork), and the probe costs one ring's setup.
  io_uring ring;
  const int r = setup(&ring);
  if (r >= 0) {
    io_uring_queue_exit(&ring);
    return poller_kind::io_uring;
  }
  static std::atomic<bool> said{false};
  if (!said.exchange(true))
    std::fprintf(stderr, "weft: io_uring is unavailable here (%s); using epoll\n",
                 std::strerror(-r));
  return poller_kind::epoll;
}

worker_ring* worker_ring::create(int& err) noexcept {
  auto* r = new (std::nothrow) worker_ring;
  auto* ring = new (std::nothrow) io_uring;
  if (!r || !ring) {
    delete r;
    delete ring;
    err = ENOMEM;
    return nullptr;
  }
  const int e = setup(ring);
  if (e < 0) {
    delete r;
    delete ring;
    err = -e;
    return nullptr;
  }
  r->ring_ = ring;
  // Each io_uring_enter then skips looking the ring's descriptor up (and counting a reference
  // to it); where the kernel lacks it, nothing changes but that.
  io_uring_register_ring_fd(ring);
  r->wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (r->wake_fd_ < 0) {
    err = errno;
    delete r;
    return nullptr;
  }
  return r;
}

worker_ring::~worker_ring() {
  if (ring_) {
    io_uring_queue_exit(ring_);
    delete ring_;
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

io_uring_sqe* worker_ring::next_sqe() noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_);
  if (!sqe) {
    io_uring_submit(ring_);  // full: hand the kernel what is queued, then there is room
    sqe = io_uring_get_sqe(ring_);
  }
  return sqe;
}

bool worker_ring::queue_file(ring_op& op, bool write, int fd, void* buf, std::size_t len,
                             std::int64_t offset) noexcept {
  io_uring_sqe* sqe = next_sqe();
  if (!sqe) return false;
  const auto at = static_cast<__u64>(offset);  // -1: the file's own position, advanced
  if (write)
    io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(len), at);
  else
    io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(len), at);
  io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(&op));
  op.owner = this;
  ++in_flight_;
  return true;
}

bool worker_ring::queue_read(ring_op& op, int fd, void* buf, std::size_t len,
                             bool socket) noexcept {
  io_uring_sqe* sqe = next_sqe();
  if (!sqe) return false;
  if (socket) {
    io_uring_prep_recv(sqe, fd, buf, len, 0);
    // Queued only after a read found the socket empty (EAGAIN, or a short read): arm the
    // kernel's poll at once instead of trying a receive that would fail first.
    sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
  } else
    io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(len), static_cast<__u64>(-1));
  io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(&op));
  op.owner = this;
  ++in_flight_;
  return true;
}

bool worker_ring::queue_send(ring_op& op, int fd, const void* buf, std::size_t len) noexcept {
  io_uring_sqe* sqe = next_sqe();
  if (!sqe) return false;
  io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(&op));
  op.owner = this;
  ++in_flight_;
  ++queued_sends_;
  return true;
}

bool worker_ring::queue_msg(ring_op& op, int fd, msghdr* msg, bool send) noexcept {
  io_uring_sqe* sqe = next_sqe();
  if (!sqe) return false;
  // No POLL_FIRST: a datagram may well be queued already, and the kernel's first try is free.
  if (send) {
    io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
    ++queued_sends_;
  } else {
    io_uring_prep_recvmsg(sqe, fd, msg, MSG_CMSG_CLOEXEC);
  }
  io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(&op));
  op.owner = this;
  ++in_flight_;
  return true;
}

bool worker_ring::queue_accept(ring_acceptor& a) noexcept {
  io_uring_sqe* sqe = next_sqe();
  if (!sqe) return false;
  io_uring_prep_multishot_accept(sqe, a.pd->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, key_of(a));
  ++in_flight_;
  return true;
}

std::uint64_t worker_ring::key_of(const ring_op& op) noexcept {
  return reinterpret_cast<std::uint64_t>(&op);
}

std::uint64_t worker_ring::key_of(const ring_acceptor& a) noexcept {
  static_assert(alignof(ring_acceptor) >= 8, "the low bits of a key are its tag");
  return reinterpret_cast<std::uint64_t>(&a) + tag_accept;
}

void worker_ring::queue_cancel_key(std::uint64_t key) noexcept {
  io_uring_sqe* sqe = next_sqe();
  if (!sqe) return;  // cannot happen after a submit; the read still completes on its own
  io_uring_prep_cancel64(sqe, key, 0);
  io_uring_sqe_set_data64(sqe, tag_ignore);
  ++in_flight_;
}

void worker_ring::post_cancel_key(std::uint64_t key) noexcept {
  for (unsigned spins = 0;; spin_pause(spins)) {
    mail_lock_.lock();
    if (mail_count_ < mailbox_size) {
      mail_[mail_count_++] = key;
      has_mail_.store(true, std::memory_order_release);
      mail_lock_.unlock();
      wake();
      return;
    }
    mail_lock_.unlock();
    wake();  // full: the owner empties it on its next pass
  }
}

void worker_ring::wake() noexcept {
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  const std::uint64_t one = 1;
  while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

bool worker_ring::wants_enter() const noexcept {
  return io_uring_sq_ready(ring_) != 0 || io_uring_cq_ready(ring_) != 0 ||
         (IO_URING_READ_ONCE(*ring_->sq.kflags) & IORING_SQ_TASKRUN) ||
         has_mail_.load(std::memory_order_relaxed);
}

bool worker_ring::has_results() const noexcept {
  return io_uring_cq_ready(ring_) != 0 ||
         (IO_URING_READ_ONCE(*ring_->sq.kflags) & IORING_SQ_TASKRUN) ||
         has_mail_.load(std::memory_order_relaxed);
}

void worker_ring::process_mailbox() noexcept {
  if (!has_mail_.load(std::memory_order_acquire)) return;
  std::uint64_t keys[mailbox_size];
  mail_lock_.lock();
  const unsigned n = mail_count_;
  std::memcpy(keys, mail_, n * sizeof keys[0]);
  mail_count_ = 0;
  has_mail_.store(false, std::memory_order_relaxed);
  mail_lock_.unlock();
  for (unsigned i = 0; i < n; ++i) {
    io_uring_sqe* sqe = next_sqe();
    if (!sqe) break;
    io_uring_prep_cancel64(sqe, keys[i], 0);
    io_uring_sqe_set_data64(sqe, tag_ignore);
    ++in_flight_;
  }
}

void worker_ring::complete(ring_op* op, int res, green_chain& out) noexcept {
  poll_descriptor* pd = op->pd;
  spinlock& lock = pd ? pd->lock : op->lock;
  green_thread* g = nullptr;
  lock.lock();
  op->result = res;
  op->done = true;
  // Still parked on the request (on a socket: still its side's waiter), it is woken with the
  // result; woken early, it waits on `drain` for this.
  bool parked = true;
  if (pd) {
    poll_descriptor::side& s = pd->sides[op->dir];
    parked = s.parked == &op->w;
    if (parked) {  // the wait ends here, whoever wakes the green thread
      s.ring = false;
      s.parked = nullptr;
    }
  }
  if (parked && op->w.claim(wake_reason::notified)) {
    g = op->w.thread;
  } else if (op->drain && op->drain->claim(wake_reason::notified)) {
    g = op->drain->thread;
  }
  chaos::spin();
  const bool sent = pd && op->dir == 1;
  lock.unlock();  // from here the op may be gone
  if (g) {
    out.append(g);
    out.brief += sent;
  }
}

void worker_ring::reap(green_chain& out, netpoller* np) noexcept {
  io_uring_cqe* cqe;
  unsigned head, seen = 0;
  bool epoll_ready = false;
  io_uring_for_each_cqe(ring_, head, cqe) {
    if (seen == max_reaped) break;  // the rest next pass
    ++seen;
    const std::uint64_t data = cqe->user_data;
    switch (data & 7) {
      case 0:
        --in_flight_;
        complete(reinterpret_cast<ring_op*>(data), cqe->res, out);
        break;
      case tag_ignore:
        --in_flight_;
        break;
      case tag_wake:
        wake_armed_ = false;
        // Drained by the read; only now may a waker skip its write again (as netpoller's
        // interrupt: cleared first, a wake in between would be lost over an empty eventfd).
        wake_pending_.store(false, std::memory_order_release);
        break;
      case tag_epoll:
        epoll_armed_ = false;
        epoll_ready = true;
        break;
      case tag_accept: {
        const bool more = cqe->flags & IORING_CQE_F_MORE;
        if (!more) --in_flight_;
        complete_accept(reinterpret_cast<ring_acceptor*>(data - tag_accept), cqe->res, more, out);
        break;
      }
    }
  }
  io_uring_cq_advance(ring_, seen);
  if (epoll_ready && np) np->poll(0, [&out](green_thread* g) { out.append(g); });
}

void worker_ring::pass(green_chain& out) noexcept {
  process_mailbox();
  queued_sends_ = 0;
  io_uring_submit_and_get_events(ring_);
  reap(out, netpoller::started());
}

void worker_ring::block(std::int64_t deadline, netpoller* np, green_chain& out) noexcept {
  process_mailbox();
  if (!wake_armed_) {
    if (io_uring_sqe* sqe = next_sqe()) {
      io_uring_prep_read(sqe, wake_fd_, &wake_buf_, sizeof wake_buf_, 0);
      io_uring_sqe_set_data64(sqe, tag_wake);
      wake_armed_ = true;
    }
  }
  if (np && !epoll_armed_) {
    if (io_uring_sqe* sqe = next_sqe()) {
      io_uring_prep_poll_add(sqe, np->epoll_fd(), POLLIN);
      io_uring_sqe_set_data64(sqe, tag_epoll);
      epoll_armed_ = true;
    }
  }
  io_uring_cqe* cqe;
  queued_sends_ = 0;
  if (deadline == no_deadline) {
    io_uring_submit_and_wait_timeout(ring_, &cqe, 1, nullptr, nullptr);
  } else {
    const std::int64_t left = std::max<std::int64_t>(deadline - now_ns(), 0);
    __kernel_timespec ts{left / 1'000'000'000, left % 1'000'000'000};
    io_uring_submit_and_wait_timeout(ring_, &cqe, 1, &ts, nullptr);
  }
  reap(out, np ? np : netpoller::started());
}

void worker_ring::drain_for_exit(green_chain& out) noexcept {
  if (io_uring_sqe* sqe = next_sqe()) {
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, tag_ignore);
    ++in_flight_;
  }
  // The wake read and the epoll poll are cancelled too; wait until nothing is left in flight.
  while (in_flight_.get() != 0 || wake_armed_ || epoll_armed_) {
    process_mailbox();
    io_uring_cqe* cqe;
    io_uring_submit_and_wait_timeout(ring_, &cqe, 1, nullptr, nullptr);
    reap(out, nullptr);
  }
  drained_ = true;
}

}  // namespace weft::detail
