// tools/loadgen's latency histogram: quantiles within its stated precision, never under-stated.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "tools/loadgen/histogram.hpp"

namespace {

TEST(loadgen_histogram, exact_below_128_and_within_1_6_percent_above) {
  for (std::uint64_t v : {0ull, 1ull, 127ull, 128ull, 129ull, 1000ull, 123456789ull, 1ull << 40}) {
    const std::size_t i = loadgen::histogram::index_of(v);
    const std::uint64_t top = loadgen::histogram::upper_bound_of(i);
    EXPECT_GE(top, v);
    if (v < 128) {
      EXPECT_EQ(top, v);
    } else {
      EXPECT_LE(static_cast<double>(top - v), 0.016 * static_cast<double>(v)) << v;
    }
  }
}

TEST(loadgen_histogram, quantiles_match_a_sorted_sample) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(12.0, 1.5);  // ~160 µs median, a long tail
  loadgen::histogram h;
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 100'000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  EXPECT_EQ(h.count(), values.size());
  EXPECT_EQ(h.max(), values.back());
  for (double q : {0.5, 0.9, 0.99, 0.999, 0.9999}) {
    const auto rank = static_cast<std::size_t>(q * static_cast<double>(values.size()) + 0.5);
    const std::uint64_t exact = values[rank - 1];
    const std::uint64_t got = h.quantile(q);
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(static_cast<double>(got - exact), 0.016 * static_cast<double>(exact) + 1) << q;
  }
}

TEST(loadgen_histogram, empty_is_zero) {
  loadgen::histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.quantile(0.99), 0u);
}

}  // namespace
