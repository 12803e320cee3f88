// The scheduler's global run queue: a locked FIFO that takes overflow from local rings and work
// submitted from outside the workers. `size` is readable without the lock.
#pragma once

#include <atomic>
#include <cstdint>

#include "green_thread.hpp"

namespace weft::detail {

class global_queue {
 public:
  bool empty() const noexcept { return size_.load(std::memory_order_acquire) == 0; }
  std::uint32_t size() const noexcept { return size_.load(std::memory_order_acquire); }

  // Appends a chain first..last of n green threads linked by `next`.
  void push_chain(green_thread* first, green_thread* last, std::uint32_t n) noexcept {
    lock_.lock();
    last->next = nullptr;
    if (tail_)
      tail_->next = first;
    else
      head_ = first;
    tail_ = last;
    size_.store(size_.load(std::memory_order_relaxed) + n, std::memory_order_release);
    lock_.unlock();
  }
  void push(green_thread* g) noexcept { push_chain(g, g, 1); }

  // Takes up to `max` green threads; returns the chain's head (linked by `next`) and sets `n`.
  green_thread* pop_batch(std::uint32_t max, std::uint32_t& n) noexcept {
    n = 0;
    if (empty()) return nullptr;
    lock_.lock();
    green_thread* first = head_;
    green_thread* last = nullptr;
    green_thread* g = head_;
    while (g && n < max) {
      last = g;
      g = g->next;
      ++n;
    }
    head_ = g;
    if (!g) tail_ = nullptr;
    if (last) last->next = nullptr;
    size_.store(size_.load(std::memory_order_relaxed) - n, std::memory_order_release);
    lock_.unlock();
    return n ? first : nullptr;
  }

 private:
  spinlock lock_;
  green_thread* head_ = nullptr;
  green_thread* tail_ = nullptr;
  std::atomic<std::uint32_t> size_{0};
};

}  // namespace weft::detail
