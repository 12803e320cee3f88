// Futex wait/wake on a 32-bit word: how idle workers and OS-thread waiters sleep.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace weft::detail {

// Sleeps while *word == expected, until woken or the absolute CLOCK_MONOTONIC deadline (ns;
// INT64_MAX: none). Spurious returns are possible: callers re-check their condition.
inline void futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                       std::int64_t deadline_ns) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (deadline_ns != INT64_MAX) {
    ts.tv_sec = deadline_ns / 1'000'000'000;
    ts.tv_nsec = deadline_ns % 1'000'000'000;
    tsp = &ts;
  }
  // FUTEX_WAIT_BITSET takes an absolute timeout on CLOCK_MONOTONIC (steady_clock's clock).
  syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(word),
          FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, tsp, nullptr, FUTEX_BITSET_MATCH_ANY);
}

inline void futex_wake(const std::atomic<std::uint32_t>* word, int count) noexcept {
  syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(word), FUTEX_WAKE | FUTEX_PRIVATE_FLAG,
          count, nullptr, nullptr, 0);
}

}  // namespace weft::detail
