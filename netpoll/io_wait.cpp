#include "io_wait.hpp"

#include <poll.h>

#include <algorithm>

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

std::error_code wait_error(io_wait_result r) noexcept {
  switch (r) {
    case io_wait_result::timed_out:
      return std::make_error_code(std::errc::timed_out);
    case io_wait_result::cancelled:
      return std::make_error_code(std::errc::operation_canceled);
    default:
      return closed_error();
  }
}

void throw_io_error(const std::error_code& ec, const std::string& what) {
  if (ec == std::errc::operation_canceled) throw weft::cancelled{};
  throw std::system_error(ec, what);
}

}  // namespace weft::detail
