// weft::mutex: a mutual-exclusion lock that parks a green thread instead of blocking its worker.
// Meets the std Lockable requirements, so std::lock_guard, std::unique_lock and std::scoped_lock
// work; usable from plain OS threads too.
//
//   weft::mutex m;
//   std::map<int, int> shared;
//   weft::go([&] { std::lock_guard g(m); shared[1] = 2; });  // parks while another holds m
#pragma once

#include <atomic>
#include <cstdint>

#include "weft/detail/waiter.hpp"

namespace weft {

class mutex {
 public:
  mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  void lock();  // never cancelled (weft/cancel.hpp): cleanup code must be able to lock
  bool try_lock() noexcept;
  void unlock();

 private:
  // Bit 0: locked. Bit 1: waiters queued (unlock takes the slow path and hands over directly,
  // so a woken waiter owns the lock: no lost wake-ups, FIFO among the parked).
  static constexpr std::uint32_t locked_bit = 1, waiters_bit = 2;
  std::atomic<std::uint32_t> state_{0};
  detail::spinlock lock_;
  detail::waiter_list waiters_;
};

}  // namespace weft
