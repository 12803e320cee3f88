// Runtime configuration, passed to weft::run.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft {

struct config {
  // Worker OS threads that run green threads. 0: the WEFT_WORKERS environment variable, else the
  // number of hardware threads. 1 is single-threaded mode: no stealing, no cross-worker wake-ups.
  unsigned workers = 0;
  // Reserved (virtual) size of each green thread's stack. Pages are committed only when touched,
  // so a large reservation costs address space and page tables, not memory.
  std::size_t stack_size = 256 * 1024;
  // Runtime operations a green thread may complete without blocking before it is made to yield
  // (Tokio's cooperative budget). 0 disables the budget.
  std::uint32_t coop_budget = 128;
};

// Per-spawn options: weft::go(weft::spawn_options{.stack_size = 8 << 20}, f).
struct spawn_options {
  std::size_t stack_size = 0;  // 0: config::stack_size
};

}  // namespace weft
