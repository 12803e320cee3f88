// The serial leaf of the fork-join fib rows (micro_runtime's weft rows, thread_peers' OS-thread
// and oneTBB rows): one object file linked into each, at a 64-byte boundary (bench/fib_kernel.cpp).
#pragma once

#include <cstdint>

namespace weft_bench {

// fib(n) by plain recursion: about 92% of each fork-join run's time.
std::int64_t serial_fib(int n) noexcept;

}  // namespace weft_bench
