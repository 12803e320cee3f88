// Compiled once and linked into every binary that runs the fork-join fib rows. The same source
// compiled into two binaries lands at different offsets within a cache line, and on this
// machine's cores that alone moved this loop's speed by several percent between the oneTBB
// binary and weft's: more than the runtimes' own difference, which the row is there to show.
#include "fib_kernel.hpp"

namespace weft_bench {

[[gnu::aligned(64)]] std::int64_t serial_fib(int n) noexcept {
  return n < 2 ? n : serial_fib(n - 1) + serial_fib(n - 2);
}

}  // namespace weft_bench
