// A log-linear latency histogram (HdrHistogram's layout, reduced): exact below 128 ns, then 64
// sub-buckets per power of two, so every recorded value is kept within 1.6%. Recording is one
// relaxed atomic add, so green threads on several workers can share one.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace loadgen {

class histogram {
 public:
  void record(std::uint64_t ns) noexcept {
    counts_[index_of(ns)].fetch_add(1, std::memory_order_relaxed);
    std::uint64_t seen = max_.load(std::memory_order_relaxed);
    while (ns > seen && !max_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
    }
  }

  std::uint64_t count() const noexcept {
    std::uint64_t n = 0;
    for (const auto& c : counts_) n += c.load(std::memory_order_relaxed);
    return n;
  }
  std::uint64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }

  // The smallest recorded value v such that a fraction q of the values are <= v, reported as
  // the top of its bucket (never under-stated); 0 when empty.
  std::uint64_t quantile(double q) const noexcept {
    const std::uint64_t total = count();
    if (total == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.5);
    if (rank < 1) rank = 1;
    if (rank > total) rank = total;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets; ++i) {
      seen += counts_[i].load(std::memory_order_relaxed);
      if (seen >= rank) {
        const std::uint64_t top = upper_bound_of(i);
        return top < max() ? top : max();
      }
    }
    return max();
  }

  static std::size_t index_of(std::uint64_t v) noexcept {
    if (v < 128) return static_cast<std::size_t>(v);
    const int msb = 63 - std::countl_zero(v);
    const int shift = msb - 6;  // keeps the 7 leading bits: a mantissa in [64, 128)
    const std::uint64_t mantissa = v >> shift;
    const std::size_t i = 128 + static_cast<std::size_t>(shift - 1) * 64 + (mantissa - 64);
    return i < buckets ? i : buckets - 1;
  }
  static std::uint64_t upper_bound_of(std::size_t i) noexcept {
    if (i < 128) return i;
    const std::size_t shift = (i - 128) / 64 + 1;
    const std::uint64_t mantissa = 64 + (i - 128) % 64;
    return ((mantissa + 1) << shift) - 1;
  }

 private:
  static constexpr std::size_t buckets = 128 + 50 * 64;  // up to 2^56 ns: years
  std::array<std::atomic<std::uint64_t>, buckets> counts_{};
  std::atomic<std::uint64_t> max_{0};
};

}  // namespace loadgen
