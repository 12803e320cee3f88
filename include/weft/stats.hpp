// weft::stats(): counters of the running (or last) runtime, for monitoring and tests.
//
//   weft::runtime_stats s = weft::stats();
//   std::printf("%llu green threads live, %llu steals\n", (unsigned long long)s.green_threads_live,
//               (unsigned long long)s.steals);
//   weft::dump(std::cerr);                       // every green thread and what it waits for
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>

namespace weft {

struct runtime_stats {
  unsigned workers = 0;
  const char* poller = "epoll";  // the backend waiting for the network: "epoll" or "io_uring"
  std::uint64_t ring_reads = 0;  // reads (socket or file) that waited on an io_uring ring
  std::uint64_t ring_sends = 0;  // socket sends queued on an io_uring ring
  std::uint64_t ring_accepts = 0;  // connections taken from a listener's multishot accept
  unsigned spare_workers = 0;    // running now in place of workers stuck in one green thread
  std::uint64_t green_threads_live = 0;     // created and not yet finished
  std::uint64_t green_threads_created = 0;  // since the runtime started
  std::uint64_t tasks_live = 0;             // of the live ones, stackless tasks (weft::task)
  std::uint64_t tasks_created = 0;          // of those created, tasks
  std::uint64_t steals = 0;                 // successful steal operations
  std::uint64_t forced_yields = 0;          // yields forced by the cooperative budget
  // Times the monitor opened the private queue of a worker stuck in one green thread, so that
  // other workers could take what was queued behind it (see docs/design.md, "Private queues").
  std::uint64_t private_queues_opened = 0;
  std::uint64_t stacks_mapped = 0;         // stacks currently mapped (in use or pooled)
  std::uint64_t stacks_pooled = 0;         // mapped stacks waiting for reuse
  std::uint64_t stack_bytes_reserved = 0;  // their address space, guard pages included
  // Of that, what the kernel has committed (resident pages). Measured only when asked for with
  // stats_detail::stack_memory; 0 otherwise.
  std::uint64_t stack_bytes_committed = 0;
  unsigned idle_workers = 0;          // asleep (on a futex, or in epoll)
  unsigned spinning_workers = 0;      // looking for work to steal
  std::uint64_t runnable_global = 0;  // queued on the global queue
  std::uint64_t runnable_local = 0;   // queued on the workers' rings and run-next slots
  std::uint64_t parked = 0;           // waiting (channel, lock, sleep, socket, ...)
  unsigned blocking_threads = 0;      // OS threads of weft::blocking's pool, alive
  std::uint64_t blocking_queued = 0;  // weft::blocking calls waiting for a pool thread
};

enum class stats_detail : std::uint8_t {
  counters,      // atomic loads only: cheap enough to call often
  stack_memory,  // also stack_bytes_committed: one mincore per batch of stacks mapped together,
                 // about a microsecond per 32 stacks (tens of ms at a million green threads)
};

// A snapshot. Zeroes when no runtime ever ran; once a runtime has ended, its last counters
// (stack_bytes_committed is then 0: its stacks are gone).
runtime_stats stats(stats_detail detail = stats_detail::counters) noexcept;

// Writes every started green thread (id, name, state, what it waits for and for how long) to
// `out`, Go's goroutine dump; SIGQUIT prints the same to stderr. Nothing without a runtime.
void dump(std::ostream& out);

// Gives the kernel back the green-thread stacks pooled for reuse, of every size (the runtime also
// does this by itself for stacks nobody took for a second beyond the 4,096 it keeps ready, and
// for all of them once every worker has slept for a second). Returns how many stacks were
// unmapped; 0 without a runtime.
std::size_t trim() noexcept;

// Where the runtime's own objects (green-thread records, queue nodes, channel buffers) come
// from: "jemalloc" (a private copy; the program's malloc is untouched) or "libc" (sanitizer
// builds, or WEFT_ALLOCATOR=libc in the environment, read once per process).
const char* runtime_allocator() noexcept;

// How green-thread stacks are guarded: "madvise" (MADV_GUARD_INSTALL, no extra kernel VMA),
// "mprotect" (the fallback, rationed within vm.max_map_count; WEFT_STACK_GUARDS=mprotect[:N]
// forces it) or "none" (the ration is spent; a warning said so once).
const char* stack_guards() noexcept;

}  // namespace weft
