// A worker's local run queue: a fixed ring of 256 (Go's runq). Only the owning worker pushes;
// the owner and thieves pop from the head with a CAS. Thieves take half in one CAS.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

struct green_thread;

class run_queue {
 public:
  static constexpr std::uint32_t capacity = 256;

  // Owner only. False when full (the caller moves half to the global queue: see take_half).
  bool push(green_thread* g) noexcept {
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    if (t - h >= capacity) return false;
    slots_[t % capacity].store(g, std::memory_order_relaxed);
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Owner only: when full, removes the older half into a linked chain (returned, `n` set) so
  // the caller can move it to the global queue in one lock. Null if a thief made room.
  green_thread* take_half(std::uint32_t& n) noexcept;

  // Owner or thief.
  green_thread* pop() noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      if (t == h) return nullptr;
      green_thread* g = slots_[h % capacity].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel)) return g;
    }
  }

  // Owner only, and only when no thief can exist (one worker): no CAS needed.
  green_thread* pop_unshared() noexcept {
    const std::uint32_t h = head_.load(std::memory_order_relaxed);
    if (tail_.load(std::memory_order_relaxed) == h) return nullptr;
    green_thread* g = slots_[h % capacity].load(std::memory_order_relaxed);
    head_.store(h + 1, std::memory_order_relaxed);
    return g;
  }

  // Called by the owner of `this` (the thief): moves half of `victim`'s queue here and returns
  // one of them to run now (null if nothing was there).
  green_thread* steal_from(run_queue& victim) noexcept;

  std::uint32_t size() const noexcept {
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_acquire);
    return t - h;
  }
  bool empty() const noexcept { return size() == 0; }

 private:
  alignas(64) std::atomic<std::uint32_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  alignas(64) std::atomic<green_thread*> slots_[capacity] = {};
};

}  // namespace weft::detail
