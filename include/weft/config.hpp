// Runtime configuration, passed to weft::run.
//
//   weft::config cfg;
//   cfg.workers = 1;                             // single-threaded mode
//   cfg.stack_size = 256 * 1024;                 // deeper recursion in every green thread
//   weft::run(main_loop, cfg);
//
// docs/tuning.md says when to change each field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace weft {

// The main green thread (the function given to weft::run) gets at least this much stack: it
// usually sets everything up, and there is only one.
inline constexpr std::size_t main_stack_size = 1024 * 1024;

// How green threads wait for the network (docs/design.md, "The io_uring backend").
enum class poller_backend : std::uint8_t {
  automatic,  // the WEFT_POLLER environment variable ("epoll" or "io_uring"), else io_uring
  epoll,      // one process-wide epoll: every wait is readiness, then the call
  io_uring,   // a ring per worker: reads that would wait and sends are queued, many sent at once
};

struct config {
  // Worker OS threads that run green threads. 0: the WEFT_WORKERS environment variable, else the
  // number of hardware threads. 1 is single-threaded mode: no stealing, no cross-worker wake-ups.
  unsigned workers = 0;
  // Reserved (virtual) size of each green thread's stack, guard page apart. Pages are committed
  // only when touched, but every 2 MiB of address space holding a touched page costs a 4 KiB
  // page table: 128 KiB keeps that at 256 bytes per green thread. Measured on a 2-core VM: at
  // 96 KiB and below, a server carrying a million parked green threads showed a 5x worse p99 (a
  // layout effect we have not pinned down); at 256 KiB, waking a million parked green threads
  // took 6x longer than at 64 KiB (page-table and TLB misses), at 128 KiB 4x. Deeper recursion:
  // raise it, or spawn_options::stack_size for one green thread. An overflow is caught by the
  // guard page and named, never silent.
  std::size_t stack_size = 128 * 1024;
  // Runtime operations a green thread may complete without blocking before it is made to yield
  // (Tokio's cooperative budget). 0 disables the budget.
  std::uint32_t coop_budget = 128;
  // When every green thread is parked and nothing can wake one (no timer, no socket, no other
  // OS thread in the process), print "weft: all green threads are asleep - deadlock!" with each
  // green thread's wait and exit with status 2, as Go does.
  bool detect_deadlock = true;
  // SIGQUIT (Ctrl-\) prints every green thread to stderr and exits with status 2, as Go does
  // (only if the program has no SIGQUIT handler of its own).
  bool dump_on_sigquit = true;
  // Most OS threads weft::blocking may run at once; further calls queue. Threads are started on
  // demand and exit after 10 s idle (Tokio's spawn_blocking pool keeps the same bound).
  unsigned max_blocking_threads = 512;
  // io_uring falls back to epoll, with one line on stderr, where the kernel refuses rings
  // (ENOSYS, or EPERM from seccomp or kernel.io_uring_disabled). stats().poller says which runs.
  poller_backend poller = poller_backend::automatic;
};

// Per-spawn options: weft::go(weft::spawn_options{.stack_size = 8 << 20}, f).
struct spawn_options {
  // 0: config::stack_size. Stacks of other sizes are pooled per size and reused too (a spawn
  // with its own size costs what a default one does once one of that size has been used).
  std::size_t stack_size = 0;
  // Shown in dumps, the deadlock report and fatal messages (copied; up to 31 bytes kept).
  std::string_view name{};
};

// weft::go(weft::named("accept-loop"), f): a green thread with a name.
inline spawn_options named(std::string_view name, std::size_t stack_size = 0) {
  return spawn_options{stack_size, name};
}

}  // namespace weft
