#include "io_wait.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include <algorithm>
#include <stdexcept>

#include "runtime/scheduler.hpp"

namespace weft::detail {
namespace {

// An OS thread has no netpoller to wake it on close(): it polls in slices and re-checks.
constexpr std::int64_t os_thread_slice_ns = 50'000'000;

io_wait_result wait_os_thread(poll_descriptor* pd, io_direction dir, std::int64_t deadline) {
  for (;;) {
    if (pd->closing()) return io_wait_result::closed;
    const std::int64_t now = now_ns();
    if (deadline <= now) return io_wait_result::timed_out;
    const std::int64_t slice = std::min(deadline - now, os_thread_slice_ns);
    pollfd p{pd->fd, static_cast<short>(dir == io_direction::read ? POLLIN | POLLRDHUP : POLLOUT),
             0};
    const int r = ::poll(&p, 1, static_cast<int>((slice + 999'999) / 1'000'000));
    if (r > 0) return io_wait_result::ready;
  }
}

}  // namespace

io_wait_result wait_io(poll_descriptor* pd, io_direction dir, std::int64_t deadline) {
  if (!current_green()) return wait_os_thread(pd, dir, deadline);
  const io_wait_result r = netpoller::instance().wait(pd, dir, deadline);
  if (r == io_wait_result::cancelled && unwinding_for_shutdown()) throw_cancelled();
  return r;
}

bool io_ready_awaiter::await_suspend(std::coroutine_handle<> h) {
  poll_descriptor::side& s = pd_->sides[static_cast<int>(dir_)];
  if (!netpoller::instance().arm(pd_)) {
    result_ = pd_->closing() ? io_wait_result::closed : io_wait_result::failed;
    decided_ = true;
    return false;
  }
  pd_->lock.lock();
  if (pd_->closing() || s.ready) {
    result_ = pd_->closing() ? io_wait_result::closed : io_wait_result::ready;
    if (!pd_->closing()) s.ready = false;
    decided_ = true;
    pd_->lock.unlock();
    return false;
  }
  if (s.parked) {
    pd_->lock.unlock();
    throw std::logic_error(dir_ == io_direction::read
                               ? "weft::net: two green threads read one socket at once"
                               : "weft::net: two green threads write one socket at once");
  }
  s.parked = &w_;
  park_.lock = &pd_->lock;
  return task_park_begin(park_, h.address(), w_, &park_.lock, 1, deadline_,
                         dir_ == io_direction::read ? wait_reason::io_read : wait_reason::io_write);
}

io_wait_result io_ready_awaiter::await_resume() {
  if (decided_) return result_;
  const wake_reason why = park_.parked ? task_park_end(park_, w_) : w_.reason();
  if (why == wake_reason::notified)  // the notifier unlinked us
    return pd_->closing() ? io_wait_result::closed : io_wait_result::ready;
  poll_descriptor::side& s = pd_->sides[static_cast<int>(dir_)];
  pd_->lock.lock();
  if (s.parked == &w_) s.parked = nullptr;
  pd_->lock.unlock();
  if (why == wake_reason::cancelled && unwinding_for_shutdown()) throw_cancelled();
  return why == wake_reason::timed_out ? io_wait_result::timed_out : io_wait_result::cancelled;
}

bool connect_settled(int fd, std::error_code& ec) noexcept {
  int err = 0;
  socklen_t err_len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
  if (err != 0) {
    ec = std::error_code(err, std::system_category());
    return true;
  }
  // Writable with no error may still be "in progress" after a spurious wake-up.
  sockaddr_storage peer;
  socklen_t peer_len = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) return true;
  if (errno == ENOTCONN) return false;
  ec = std::error_code(errno, std::system_category());
  return true;
}

std::error_code wait_error(io_wait_result r) noexcept {
  switch (r) {
    case io_wait_result::timed_out:
      return std::make_error_code(std::errc::timed_out);
    case io_wait_result::cancelled:
      return std::make_error_code(std::errc::operation_canceled);
    case io_wait_result::failed:  // epoll could not take the descriptor's events: no memory
      return std::make_error_code(std::errc::not_enough_memory);
    default:
      return closed_error();
  }
}

void throw_io_error(const std::error_code& ec, const std::string& what) {
  if (ec == std::errc::operation_canceled) throw weft::cancelled{};
  throw std::system_error(ec, what);
}

}  // namespace weft::detail
