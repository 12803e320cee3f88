// The io_uring backend: one ring per worker, created on the worker's own thread (SINGLE_ISSUER,
// DEFER_TASKRUN), used for what saves a system call: a stream read or a datagram receive that
// would wait is queued on the ring and its data arrives with the wake-up, instead of a readiness
// event followed by a read; a socket's send (stream or datagram) is queued at once, and many
// go out in one io_uring_enter. Readiness for everything else (accept, connect, fd_waiter,
// tasks) stays with the process's epoll, which the blocking worker watches through its ring.
// A listener's accept that would wait arms a multishot accept instead (ring_acceptor): the
// kernel then accepts each connection as it arrives and posts its descriptor.
//
// Invariants:
// - Only the owning worker's thread touches the ring's queues (SQEs, CQEs); other threads reach
//   it through the cancel mailbox and the wake eventfd, both safe from any thread.
// - A ring_op lives on its green thread's stack and is completed (`done`) under its descriptor's
//   lock by the owner only; the green thread does not return from the read before `done`, so
//   the kernel never writes into a buffer whose call has returned, and no completion ever finds
//   a dead op. A green thread woken early (deadline, cancellation, close, kick) asks the owner
//   to cancel its request and waits for that completion.
// - A ring_acceptor is guarded by its descriptor's lock. While armed it holds one of the
//   descriptor's operations (the fd stays open) and the descriptor is not recycled: its last
//   completion (one without IORING_CQE_F_MORE) ends both. Descriptors it accepted are either
//   taken by accept() or closed (listener closed or gone): none leaks.
// - A cancel names a request by its op's address; one that arrives after the op finished may
//   hit a later op at the same address, which then completes with ECANCELED, unasked: the
//   reader takes that as "try again", never as an error.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <deque>

#include "poller.hpp"
#include "runtime/green_thread.hpp"
#include "weft/detail/pollable.hpp"
#include "weft/detail/spinlock.hpp"
#include "weft/detail/waiter.hpp"

struct io_uring;
struct io_uring_sqe;

namespace weft::detail {

class worker_ring;

// Which kernel interface waits for the network: chosen once per process (choose_poller).
enum class poller_kind : std::uint8_t { epoll, io_uring };

// The backend for a runtime configured with `requested` ("auto", "epoll", "io_uring"; "auto"
// is the WEFT_POLLER environment variable, else io_uring, which the benchmarks favour here;
// std::invalid_argument for another value there). io_uring is probed by making a ring; if the
// kernel refuses (ENOSYS, EPERM from seccomp or kernel.io_uring_disabled, ENOMEM), weft says so in
// one line on stderr, once per process, and uses epoll.
poller_kind choose_poller(const char* requested);
const char* poller_name(poller_kind k) noexcept;

// A request in flight on a worker's ring: a socket's call (with its descriptor) or a file call.
struct ring_op {
  waiter w;                 // what the green thread parks on (also its side's `parked`)
  waiter* drain = nullptr;  // woken early: it waits here for the completion
  spinlock lock;            // guards what follows for a request without a descriptor
  worker_ring* owner = nullptr;
  poll_descriptor* pd = nullptr;
  int result = 0;     // the completion's result: bytes, or -errno
  bool done = false;  // the completion arrived (under pd->lock, or `lock`)
  std::uint8_t dir = 0;
};

// A listener's multishot accept (netpoll/ring_accept.cpp), made by its first accept() that would
// wait and kept until the listener is recycled. Everything below is guarded by pd->lock.
struct ring_acceptor {
  explicit ring_acceptor(poll_descriptor* p) noexcept : pd(p) {}
  poll_descriptor* pd;
  worker_ring* owner = nullptr;     // the ring it is armed on
  bool armed = false;               // in flight: holds an operation on pd
  bool cancelling = false;          // a cancel was asked for (too many waiting, or closed)
  bool recycle_when_ended = false;  // the listener went away while armed
  int error = 0;                    // why an accept failed (EMFILE...), for the next accept()
  std::deque<int> accepted;         // connections not yet taken, oldest first
};

// How a ring read ended: `n` bytes (0 at end of stream) or -errno. -EAGAIN: read plainly (an
// edge came first, or the ring had no room); -ECANCELED with `early`: the wait ended for it
// (timed_out, cancelled, closed; `ready` for a kick: read the deadline again).
struct ring_read_result {
  long n;
  io_wait_result early;
};
// A request's wait that `why` ended before its completion came: -ECANCELED and the reason.
inline ring_read_result ended_early(wake_reason why, bool closed) noexcept {
  switch (why) {
    case wake_reason::timed_out:
      return {-ECANCELED, io_wait_result::timed_out};
    case wake_reason::cancelled:
      return {-ECANCELED, io_wait_result::cancelled};
    default:
      return {-ECANCELED, closed ? io_wait_result::closed : io_wait_result::ready};
  }
}
// The calling worker's ring, when a request may wait on it: a stackful green thread (a task has
// no stack to hold the call open on) on a worker with an open ring, not being unwound at the
// end of weft::run (the rings are drained by then). Null: wait as under epoll.
worker_ring* usable_ring() noexcept;
// From a green thread on `r`'s worker: queues `t` (a read, a send, a datagram's recvmsg or
// sendmsg) and parks until it completes. Throws std::logic_error if another green thread reads
// (writes) the same descriptor at once.
ring_read_result ring_socket_io(worker_ring& r, poll_descriptor* pd, const ring_target& t,
                                std::int64_t deadline);
// A regular file's read or write of up to `len` bytes at `offset` (-1: the file position)
// through `r`, parked meanwhile; cancellable as weft::blocking is. -EAGAIN: the ring had no
// room (use the blocking pool).
ring_read_result ring_file_io(worker_ring& r, bool write, int fd, void* buf, std::size_t len,
                              std::int64_t offset);
// From a green thread on `r`'s worker: the next connection of listener `pd` (a descriptor,
// non-blocking and close-on-exec), from its multishot accept, armed on `r` if it is not armed
// yet; parks until one comes. -errno for a failed accept (EMFILE: back off and call again);
// -EAGAIN: the ring had no room (accept plainly); -ECANCELED with `early` as ring_socket_io's.
// Throws std::logic_error if another green thread waits on the listener at once.
ring_read_result ring_accept(worker_ring& r, poll_descriptor* pd, std::int64_t deadline);
// Any thread: a connection the listener's multishot accept took and nobody has yet, or -1.
// An accept that does not go through ring_accept (a task's, or one off the ring) calls this
// first: the kernel hands a connection to one accept only.
int take_accepted(poll_descriptor* pd) noexcept;

class worker_ring {
 public:
  // On the worker's thread. Null with `err` set if the kernel refuses.
  static worker_ring* create(int& err) noexcept;
  ~worker_ring();
  worker_ring(const worker_ring&) = delete;
  worker_ring& operator=(const worker_ring&) = delete;

  // Owner thread: queues a read of `len` bytes into `buf` (recv for a socket, read otherwise)
  // whose completion finishes `op`. False if the ring has no room even after a submit.
  bool queue_read(ring_op& op, int fd, void* buf, std::size_t len, bool socket) noexcept;
  // Owner thread: queues a send of `len` bytes from `buf` on socket `fd`.
  bool queue_send(ring_op& op, int fd, const void* buf, std::size_t len) noexcept;
  // Owner thread: queues a datagram's recvmsg (sendmsg) through `msg`.
  bool queue_msg(ring_op& op, int fd, msghdr* msg, bool send) noexcept;
  // Owner thread: queues a file read or write (netpoll/ring_wait.cpp).
  bool queue_file(ring_op& op, bool write, int fd, void* buf, std::size_t len,
                  std::int64_t offset) noexcept;
  // Owner thread: queues the multishot accept of `a`'s listener.
  bool queue_accept(ring_acceptor& a) noexcept;
  // Owner thread: queues a cancel of `op`'s request (`a`'s accept).
  void queue_cancel(const ring_op& op) noexcept { queue_cancel_key(key_of(op)); }
  void queue_cancel(const ring_acceptor& a) noexcept { queue_cancel_key(key_of(a)); }
  // Any thread: asks the owner to cancel `op`'s request (`a`'s accept) and wakes it.
  void post_cancel(const ring_op& op) noexcept { post_cancel_key(key_of(op)); }
  void post_cancel(const ring_acceptor& a) noexcept { post_cancel_key(key_of(a)); }
  // Any thread: breaks the owner out of block().
  void wake() noexcept;

  // Whether the owner should enter the kernel now: completions wait for it (the kernel sets a
  // flag), a cancel was posted, or many requests are queued.
  bool wants_enter() const noexcept;
  // Whether entering would reap something: completions or a posted cancel wait for it. (An
  // idle worker with only requests queued submits them as it blocks, in the same entry.)
  bool has_results() const noexcept;
  // Whether a send waits to be submitted: a busy worker enters soon for it, as a plain send
  // would have gone out at once.
  bool has_queued_sends() const noexcept { return queued_sends_ != 0; }
  // Whether requests are in the kernel: an idle worker may see one complete soon. Any thread
  // may ask (the monitor does: I/O waits on this ring).
  bool has_in_flight() const noexcept { return in_flight_.get() != 0; }
  // Owner thread: submits what is queued and reaps what completed, without waiting; the green
  // threads made runnable go to `out`.
  void pass(green_chain& out) noexcept;
  // Owner thread, idle: the same, then waits until a completion, a wake(), `deadline` (steady
  // ns), or, with `np`, a readiness event on the process's epoll (collected into `out` too).
  void block(std::int64_t deadline, netpoller* np, green_chain& out) noexcept;
  // Owner thread, leaving for good: cancels everything in flight and reaps it all.
  void drain_for_exit(green_chain& out) noexcept;
  // Owner thread: false once drained for exit (reads then wait for readiness).
  bool open() const noexcept { return !drained_; }

 private:
  worker_ring() = default;
  static std::uint64_t key_of(const ring_op& op) noexcept;
  static std::uint64_t key_of(const ring_acceptor& a) noexcept;
  void queue_cancel_key(std::uint64_t key) noexcept;
  void post_cancel_key(std::uint64_t key) noexcept;
  void process_mailbox() noexcept;
  void reap(green_chain& out, netpoller* np) noexcept;
  void complete(ring_op* op, int res, green_chain& out) noexcept;
  // netpoll/ring_accept.cpp: one connection (or the end) of `a`'s multishot accept.
  void complete_accept(ring_acceptor* a, int res, bool more, green_chain& out) noexcept;
  ::io_uring_sqe* next_sqe() noexcept;

  io_uring* ring_ = nullptr;
  int wake_fd_ = -1;
  std::uint64_t wake_buf_ = 0;
  bool wake_armed_ = false;
  bool epoll_armed_ = false;
  bool drained_ = false;
  // Requests (an armed multishot: one) and cancels. Changed by the owner only, with plain
  // loads and stores; atomic so that the monitor may read it.
  class owner_counter {
   public:
    void operator++() noexcept { n_.store(get() + 1, std::memory_order_relaxed); }
    void operator--() noexcept { n_.store(get() - 1, std::memory_order_relaxed); }
    std::uint32_t get() const noexcept { return n_.load(std::memory_order_relaxed); }

   private:
    std::atomic<std::uint32_t> n_{0};
  };
  owner_counter in_flight_;
  std::uint32_t queued_sends_ = 0;  // sends queued since the last submit
  std::atomic<bool> wake_pending_{false};

  // Cancels posted by other threads: keys copied, never pointers kept (the op may be gone).
  static constexpr unsigned mailbox_size = 256;
  spinlock mail_lock_;
  std::atomic<bool> has_mail_{false};
  unsigned mail_count_ = 0;
  std::uint64_t mail_[mailbox_size];
};

}  // namespace weft::detail
