// The netpoller (Go's netpoll_epoll): one edge-triggered epoll instance per process. Every
// socket weft opens is registered once, for reads and writes; a green thread that would block
// parks on its poll descriptor, and the scheduler collects the ready ones when it polls.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "weft/detail/spinlock.hpp"
#include "weft/detail/waiter.hpp"

namespace weft::detail {

struct green_thread;
struct ring_acceptor;

enum class io_direction : std::uint8_t { read = 0, write = 1 };
enum class io_wait_result : std::uint8_t { ready, timed_out, closed, cancelled, failed };

// One per open socket. Type-stable: never freed, only recycled, because the kernel may still
// report an event for a closed socket; `seq` tells such stale events from current ones.
struct poll_descriptor {
  struct side {
    waiter* parked = nullptr;  // the green thread waiting for this direction, if any
    bool ready = false;        // an edge arrived while nobody waited: the next wait returns
    bool ring = false;         // `parked` waits for a ring read (ring.hpp): no edge wakes it
  };

  spinlock lock;
  int fd = -1;
  std::uint32_t index = 0;  // place in the descriptor table (stable)
  std::uint32_t seq = 0;    // bumped on each reuse
  side sides[2];
  std::atomic<bool> hangup{false};  // the peer hung up or an error is pending (until reuse)
  // Operations in flight, plus `closing_bit` once closed. The fd is closed when the last
  // operation ends after close() (Go's fdMutex, reduced): never while a syscall may use it.
  static constexpr std::uint32_t closing_bit = 1u << 31;
  std::atomic<std::uint32_t> state{0};
  std::atomic<bool> fd_closed{false};  // close_fd ran: guards against a second ::close
  bool owns_fd = true;  // false for io::fd_waiter: close_fd only unregisters the descriptor
  // Registered for reads and writes. Under io_uring a descriptor is first registered for
  // errors and hang-ups only, and for the rest on its first readiness wait: reads that go
  // through a ring would otherwise wake the epoll side for every arriving segment too.
  std::atomic<bool> all_events{false};
  ring_acceptor* acceptor = nullptr;  // a listener's multishot accept (ring.hpp), under `lock`
  poll_descriptor* next_free = nullptr;

  bool closing() const noexcept { return state.load(std::memory_order_acquire) & closing_bit; }
  bool begin_op() noexcept;  // false once closing
  void end_op() noexcept;
};

// A listener's multishot accept meets the descriptor's life here (netpoll/ring_accept.cpp):
// close() ends it (closing what it accepted), recycle() waits for its last completion (true:
// the completion recycles), and a forked child forgets the parent's request.
void close_acceptor(poll_descriptor* pd) noexcept;
bool acceptor_defers_recycle(poll_descriptor* pd) noexcept;
void forget_acceptor_after_fork(poll_descriptor* pd) noexcept;

class netpoller {
 public:
  // The process's poller, created on first use (throws std::system_error if epoll cannot be).
  static netpoller& instance();
  // Null until instance() was first called: the scheduler then has nothing to poll.
  static netpoller* started() noexcept;

  // Registers `fd` (non-blocking already). On failure closes nothing and throws system_error.
  // An fd not `owned` is only unregistered, never closed, when the descriptor closes.
  poll_descriptor* open(int fd, bool owned = true);
  // Marks the descriptor closing and wakes its waiters; the fd is closed once no operation
  // uses it. Idempotent.
  void close(poll_descriptor* pd) noexcept;
  // After close(), by the owner, once no operation can start: the descriptor is reused.
  void recycle(poll_descriptor* pd) noexcept;

  // Under io_uring: descriptors opened from now on register for readiness on first wait only.
  void register_lazily(bool on) noexcept { lazy_.store(on, std::memory_order_relaxed); }
  // Before a readiness wait: registers `pd` for all events if it was not. False on failure
  // (errno set).
  bool arm(poll_descriptor* pd) noexcept {
    return pd->all_events.load(std::memory_order_acquire) || arm_slow(pd);
  }
  int epoll_fd() const noexcept { return epfd_; }

  // Waits on `pd` for `dir` until ready, `deadline` (steady ns) or close. Green threads only.
  io_wait_result wait(poll_descriptor* pd, io_direction dir, std::int64_t deadline);
  // Wakes a green thread waiting on `pd` (both directions) so it re-reads its deadline.
  void kick(poll_descriptor* pd) noexcept;

  // Polls the kernel once: `timeout_ns` 0 returns at once, <0 waits until an event or
  // interrupt(). Hands each green thread made runnable to `on_ready`; returns how many.
  template <class F>
  int poll(std::int64_t timeout_ns, F&& on_ready) {
    using fn = std::remove_reference_t<F>;
    ready_sink sink{const_cast<void*>(static_cast<const void*>(&on_ready)),
                    [](void* f, green_thread* g) { (*static_cast<fn*>(f))(g); }};
    return poll_impl(timeout_ns, sink);
  }
  // Breaks a blocking poll (from any thread). Cheap when one is already pending.
  void interrupt() noexcept;

  // Sockets registered now: zero means polling can find nothing.
  std::uint32_t registered() const noexcept { return registered_.load(std::memory_order_relaxed); }
  // One worker at a time blocks in the kernel; others only poll without blocking.
  bool try_begin_blocking_poll() noexcept {
    return !blocking_.load(std::memory_order_relaxed) &&
           !blocking_.exchange(true, std::memory_order_acquire);
  }
  void end_blocking_poll() noexcept { blocking_.store(false, std::memory_order_release); }
  bool someone_blocks() const noexcept { return blocking_.load(std::memory_order_relaxed); }

 private:
  friend struct poll_descriptor;
  void close_fd(poll_descriptor* pd) noexcept;
  bool arm_slow(poll_descriptor* pd) noexcept;
  struct ready_sink {
    void* fn;
    void (*call)(void*, green_thread*);
  };
  netpoller();
  void open_kernel_objects();
  void reopen_after_fork() noexcept;
  int poll_impl(std::int64_t timeout_ns, ready_sink& sink);
  poll_descriptor* allocate();
  poll_descriptor* lookup(std::uint64_t tag) noexcept;
  // Called with pd->lock held; releases it.
  int notify(poll_descriptor* pd, std::uint32_t events, ready_sink& sink) noexcept;

  int epfd_ = -1;
  int eventfd_ = -1;
  std::atomic<bool> interrupt_pending_{false};
  std::atomic<bool> blocking_{false};
  std::atomic<bool> lazy_{false};
  std::atomic<std::uint32_t> registered_{0};

  spinlock alloc_lock_;
  poll_descriptor* free_ = nullptr;
  std::uint32_t allocated_ = 0;
  // Descriptors live in chunks that are never freed; the table of chunks is fixed-size.
  static constexpr std::uint32_t chunk_bits = 10;
  static constexpr std::uint32_t chunk_size = 1u << chunk_bits;
  static constexpr std::uint32_t max_chunks = 1u << 14;  // 16M descriptors
  std::atomic<poll_descriptor*>* chunks_;
};

}  // namespace weft::detail
