#include "run_queue.hpp"

#include "green_thread.hpp"

namespace weft::detail {

green_thread* run_queue::take_half(std::uint32_t& n) noexcept {
  std::uint32_t h = head_.load(std::memory_order_acquire);
  const std::uint32_t t = tail_.load(std::memory_order_relaxed);
  n = (t - h) / 2;
  if (n == 0 || t - h < capacity) return nullptr;
  green_thread* batch[capacity / 2];
  for (std::uint32_t i = 0; i < n; ++i)
    batch[i] = slots_[(h + i) % capacity].load(std::memory_order_relaxed);
  if (!head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return nullptr;
  for (std::uint32_t i = 0; i + 1 < n; ++i) batch[i]->next = batch[i + 1];
  batch[n - 1]->next = nullptr;
  return batch[0];
}

green_thread* run_queue::steal_from(run_queue& victim) noexcept {
  const std::uint32_t my_tail = tail_.load(std::memory_order_relaxed);
  for (;;) {
    std::uint32_t h = victim.head_.load(std::memory_order_acquire);
    const std::uint32_t t = victim.tail_.load(std::memory_order_acquire);
    std::uint32_t n = t - h;
    n -= n / 2;
    if (n == 0) return nullptr;
    if (n > capacity / 2) continue;  // inconsistent snapshot (h moved under us): re-read
    // Copy into our own ring past our tail (only we write there), then claim with one CAS.
    for (std::uint32_t i = 0; i < n; ++i) {
      green_thread* g = victim.slots_[(h + i) % capacity].load(std::memory_order_relaxed);
      slots_[(my_tail + i) % capacity].store(g, std::memory_order_relaxed);
    }
    if (!victim.head_.compare_exchange_weak(h, h + n, std::memory_order_acq_rel)) continue;
    // The records were written on the victim's core: fetch them all at once rather than miss
    // on each in turn as they run (a line from the other core costs ~250 ns on a VM here).
    for (std::uint32_t i = 0; i < n; ++i) {
      const char* rec = reinterpret_cast<const char*>(
          slots_[(my_tail + i) % capacity].load(std::memory_order_relaxed));
      for (std::size_t off = 0; off < sizeof(green_thread) + 16; off += 64)
        __builtin_prefetch(rec + off);
    }
    // Run the last one now; publish the rest.
    --n;
    green_thread* g = slots_[(my_tail + n) % capacity].load(std::memory_order_relaxed);
    if (n) tail_.store(my_tail + n, std::memory_order_release);
    return g;
  }
}

}  // namespace weft::detail
