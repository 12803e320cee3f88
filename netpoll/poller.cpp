#include "poller.hpp"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <system_error>

#include "runtime/chaos.hpp"
#include "runtime/green_thread.hpp"

namespace weft::detail {
namespace {

std::atomic<netpoller*> g_poller{nullptr};
constexpr std::uint64_t interrupt_tag = ~std::uint64_t{0};
constexpr int max_events = 128;

std::uint64_t tag_of(const poll_descriptor* pd) noexcept {
  return (std::uint64_t{pd->index} << 32) | pd->seq;
}

}  // namespace

bool poll_descriptor::begin_op() noexcept {
  if (state.fetch_add(1, std::memory_order_acquire) & closing_bit) {
    end_op();
    return false;
  }
  return true;
}

void poll_descriptor::end_op() noexcept {
  if (state.fetch_sub(1, std::memory_order_acq_rel) == (closing_bit | 1))
    netpoller::instance().close_fd(this);
}

netpoller& netpoller::instance() {
  if (netpoller* p = g_poller.load(std::memory_order_acquire)) return *p;
  static std::once_flag once;
  std::call_once(once, [] {
    // Never destroyed: descriptors must outlive every socket, and epoll lives with the process.
    g_poller.store(new netpoller, std::memory_order_release);
  });
  return *g_poller.load(std::memory_order_acquire);
}

netpoller* netpoller::started() noexcept {
  return g_poller.load(std::memory_order_acquire);
}

netpoller::netpoller() {
  open_kernel_objects();
  chunks_ = new std::atomic<poll_descriptor*>[max_chunks]();
  // A forked child shares the parent's epoll instance: both would take each other's events.
  // The child gets its own and re-registers the sockets it inherited.
  pthread_atfork(nullptr, nullptr, [] {
    if (netpoller* p = started()) p->reopen_after_fork();
  });
}

void netpoller::reopen_after_fork() noexcept {
  ::close(epfd_);
  ::close(eventfd_);
  interrupt_pending_.store(false, std::memory_order_relaxed);
  blocking_.store(false, std::memory_order_relaxed);
  try {
    open_kernel_objects();
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "weft: after fork: %s\n", e.what());
    std::abort();
  }
  for (std::uint32_t i = 0; i < allocated_; ++i) {
    poll_descriptor* pd = &chunks_[i / chunk_size].load(std::memory_order_relaxed)[i % chunk_size];
    if (pd->acceptor) forget_acceptor_after_fork(pd);
    if (pd->fd < 0 || pd->closing()) continue;
    epoll_event ev{};
    ev.events = pd->all_events.load(std::memory_order_relaxed)
                    ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
                    : EPOLLET;
    ev.data.u64 = tag_of(pd);
    epoll_ctl(epfd_, EPOLL_CTL_ADD, pd->fd, &ev);
  }
}

void netpoller::open_kernel_objects() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::system_error(errno, std::system_category(), "weft: epoll_create1");
  eventfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (eventfd_ < 0) {
    const int e = errno;
    ::close(epfd_);
    throw std::system_error(e, std::system_category(), "weft: eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: it stays readable until drained
  ev.data.u64 = interrupt_tag;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, eventfd_, &ev) != 0)
    throw std::system_error(errno, std::system_category(), "weft: epoll_ctl(eventfd)");
}

poll_descriptor* netpoller::allocate() {
  alloc_lock_.lock();
  if (poll_descriptor* pd = free_) {
    free_ = pd->next_free;
    alloc_lock_.unlock();
    return pd;
  }
  if (allocated_ % chunk_size == 0) {
    if (allocated_ / chunk_size == max_chunks) {
      alloc_lock_.unlock();
      throw std::system_error(std::make_error_code(std::errc::too_many_files_open),
                              "weft: poll descriptor table is full");
    }
    auto* chunk = new (std::nothrow) poll_descriptor[chunk_size];
    if (!chunk) {
      alloc_lock_.unlock();
      throw std::bad_alloc();
    }
    for (std::uint32_t i = 0; i < chunk_size; ++i) chunk[i].index = allocated_ + i;
    chunks_[allocated_ / chunk_size].store(chunk, std::memory_order_release);
  }
  poll_descriptor* pd =
      &chunks_[allocated_ / chunk_size].load(std::memory_order_relaxed)[allocated_ % chunk_size];
  ++allocated_;
  alloc_lock_.unlock();
  return pd;
}

poll_descriptor* netpoller::lookup(std::uint64_t tag) noexcept {
  const auto index = static_cast<std::uint32_t>(tag >> 32);
  poll_descriptor* chunk = chunks_[index >> chunk_bits].load(std::memory_order_acquire);
  return chunk ? &chunk[index & (chunk_size - 1)] : nullptr;
}

poll_descriptor* netpoller::open(int fd, bool owned) {
  poll_descriptor* pd = allocate();
  pd->lock.lock();
  pd->fd = fd;
  pd->owns_fd = owned;
  pd->hangup.store(false, std::memory_order_relaxed);
  pd->sides[0] = {};
  pd->sides[1] = {};
  pd->state.store(0, std::memory_order_relaxed);
  pd->fd_closed.store(false, std::memory_order_relaxed);
  const bool lazy = lazy_.load(std::memory_order_relaxed);
  pd->all_events.store(!lazy, std::memory_order_relaxed);
  pd->lock.unlock();
  epoll_event ev{};
  ev.events = lazy ? EPOLLET : EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = tag_of(pd);
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int e = errno;
    pd->fd = -1;
    recycle(pd);
    throw std::system_error(e, std::system_category(),
                            e == EPERM
                                ? "weft: this descriptor cannot be polled (a regular file or "
                                  "directory? use weft::fs)"
                                : "weft: registering a descriptor with epoll");
  }
  registered_.fetch_add(1, std::memory_order_relaxed);
  return pd;
}

void netpoller::close(poll_descriptor* pd) noexcept {
  const std::uint32_t before =
      pd->state.fetch_or(poll_descriptor::closing_bit, std::memory_order_acq_rel);
  if (before & poll_descriptor::closing_bit) return;
  kick(pd);  // waiters see `closing` and return
  close_acceptor(pd);
  if (before == 0) close_fd(pd);
}

void netpoller::close_fd(poll_descriptor* pd) noexcept {
  // Reached when the count of operations drops to zero while closing; a begin_op that lost the
  // race to close() can get here too, after close() itself did: only the first one closes.
  if (pd->fd_closed.exchange(true, std::memory_order_acq_rel)) return;
  // The kernel drops the fd from the epoll set as it closes (weft never dup()s its sockets). A
  // borrowed fd stays open: unregister it, or its owner's next use would still wake us.
  if (pd->owns_fd)
    ::close(pd->fd);
  else
    epoll_ctl(epfd_, EPOLL_CTL_DEL, pd->fd, nullptr);
  registered_.fetch_sub(1, std::memory_order_relaxed);
}

bool netpoller::arm_slow(poll_descriptor* pd) noexcept {
  // Two waiters (a reader and a writer) may arm at once: both MODs ask for the same events.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = tag_of(pd);
  // Edge-triggered MOD reports what is ready now, so nothing that came before is missed.
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, pd->fd, &ev) != 0) return false;
  pd->all_events.store(true, std::memory_order_release);
  return true;
}

void netpoller::recycle(poll_descriptor* pd) noexcept {
  if (acceptor_defers_recycle(pd)) return;
  pd->lock.lock();
  ++pd->seq;  // events still queued for the old socket are now stale
  pd->fd = -1;
  pd->sides[0] = {};
  pd->sides[1] = {};
  pd->lock.unlock();
  alloc_lock_.lock();
  pd->next_free = free_;
  free_ = pd;
  alloc_lock_.unlock();
}

io_wait_result netpoller::wait(poll_descriptor* pd, io_direction dir, std::int64_t deadline) {
  poll_descriptor::side& s = pd->sides[static_cast<int>(dir)];
  if (!arm(pd)) return pd->closing() ? io_wait_result::closed : io_wait_result::failed;
  pd->lock.lock();
  if (pd->closing()) {
    pd->lock.unlock();
    return io_wait_result::closed;
  }
  if (s.ready) {
    s.ready = false;
    pd->lock.unlock();
    return io_wait_result::ready;
  }
  if (s.parked) {
    pd->lock.unlock();
    throw std::logic_error(dir == io_direction::read
                               ? "weft::net: two green threads read one socket at once"
                               : "weft::net: two green threads write one socket at once");
  }
  waiter w;
  s.parked = &w;
  const wake_reason why =
      park(w, &pd->lock, deadline,
           dir == io_direction::read ? wait_reason::io_read : wait_reason::io_write);
  if (why == wake_reason::notified)  // the notifier unlinked us
    return pd->closing() ? io_wait_result::closed : io_wait_result::ready;
  pd->lock.lock();
  if (s.parked == &w) s.parked = nullptr;
  pd->lock.unlock();
  return why == wake_reason::timed_out ? io_wait_result::timed_out : io_wait_result::cancelled;
}

void netpoller::kick(poll_descriptor* pd) noexcept {
  green_thread* woken[2] = {nullptr, nullptr};
  pd->lock.lock();
  for (int i = 0; i < 2; ++i) {
    poll_descriptor::side& s = pd->sides[i];
    if (s.parked && s.parked->claim(wake_reason::notified)) {
      woken[i] = s.parked->thread;
      s.parked = nullptr;
    }
  }
  pd->lock.unlock();
  ready(woken[0]);
  ready(woken[1]);
}

int netpoller::notify(poll_descriptor* pd, std::uint32_t events, ready_sink& sink) noexcept {
  const bool hup = events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
  const bool flagged[2] = {hup || (events & EPOLLIN) != 0,
                           (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0};
  green_thread* woken[2] = {nullptr, nullptr};
  for (int i = 0; i < 2; ++i) {
    if (!flagged[i]) continue;
    poll_descriptor::side& s = pd->sides[i];
    // A ring read's completion wakes its green thread, with the data. The edge is kept all
    // the same: that read may complete with less than what came, and a wait for readiness
    // after it (on a worker without a ring, or from a task) must not sleep on what is there.
    if (!s.ring && s.parked && s.parked->claim(wake_reason::notified)) {
      woken[i] = s.parked->thread;
      s.parked = nullptr;
    } else {
      s.ready = true;  // nobody waits (or its timer won): the next wait returns at once
    }
  }
  if (hup) pd->hangup.store(true, std::memory_order_relaxed);
  chaos::spin();
  pd->lock.unlock();
  int n = 0;
  for (green_thread* g : woken) {
    if (!g) continue;
    sink.call(sink.fn, g);
    ++n;
  }
  return n;
}

int netpoller::poll_impl(std::int64_t timeout_ns, ready_sink& sink) {
  epoll_event events[max_events];
  int n;
  if (timeout_ns == 0) {
    n = epoll_wait(epfd_, events, max_events, 0);
  } else {
    timespec ts{timeout_ns / 1'000'000'000, timeout_ns % 1'000'000'000};
    n = epoll_pwait2(epfd_, events, max_events, timeout_ns < 0 ? nullptr : &ts, nullptr);
    if (n < 0 && errno == ENOSYS) {
      const int ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999'999) / 1'000'000);
      n = epoll_wait(epfd_, events, max_events, ms);
    }
  }
  if (n < 0) return 0;  // EINTR: the caller polls again when it has to
  int woken = 0;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t tag = events[i].data.u64;
    if (tag == interrupt_tag) {
      // Only the sleeping poller consumes an interrupt: a worker polling without blocking may
      // see it too (the eventfd is level-triggered) but must leave it for the one it was for.
      // Drain first, then clear the flag (Go's netpollWakeSig): cleared first, an interrupt
      // made in between would write, be drained here, and leave the flag set over an empty
      // eventfd, so that every later interrupt() skipped its write and a poller slept through
      // them all. Drained first, an interrupt in between is skipped, but it was for this
      // poller, which is returning anyway; the exchange makes its waker's stores visible.
      if (timeout_ns != 0) {
        std::uint64_t drained;
        while (::read(eventfd_, &drained, sizeof drained) < 0 && errno == EINTR) {
        }
        chaos::point();  // an interrupt made now must not be lost
        interrupt_pending_.exchange(false, std::memory_order_acq_rel);
      }
      continue;
    }
    poll_descriptor* pd = lookup(tag);
    if (!pd) continue;
    pd->lock.lock();
    if (pd->seq != static_cast<std::uint32_t>(tag) || pd->fd < 0) {
      pd->lock.unlock();  // an event for a socket closed since
      continue;
    }
    woken += notify(pd, events[i].events, sink);
  }
  return woken;
}

void netpoller::interrupt() noexcept {
  if (interrupt_pending_.exchange(true, std::memory_order_acq_rel)) return;
  chaos::point();
  const std::uint64_t one = 1;
  // Never lost to a signal: the flag now says one is pending, so nobody else would write.
  while (::write(eventfd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

}  // namespace weft::detail
