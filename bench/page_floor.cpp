// The page floor under the 1M-parked rows: what the kernel alone charges for a million stacks
// laid out as weft lays them out, with no weft in the process. Each thread maps its regions in
// batches of 32 (one mmap per batch, 128 KiB of stack plus a 4 KiB guard each, MADV_NOHUGEPAGE,
// the guard page installed as weft installs it: MADV_GUARD_INSTALL, else mprotect), then
// writes one byte near the top of each (where a green thread's first frames land: its first
// page fault). The second pass writes the same bytes again (the release pass: each green thread
// runs once more on a page already there). From 1 thread, then from 2 threads sharing the work,
// to show whether faults from two threads of one process serialize on this machine.
// Usage: page_floor [count]. One line per thread count:
//   floor threads=T count=N map_touch_s=S retouch_s=R
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace {

constexpr std::size_t stack_bytes = 128 * 1024;  // weft::config{}.stack_size
constexpr std::size_t batch = 32;                // weft's stack_cache map batch

std::size_t page() {
  static const std::size_t pg = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return pg;
}

struct share {
  std::size_t count = 0;
  std::vector<char*> batches;  // each `batch` regions of stack_bytes + a guard page
};

void map_and_touch(share& s) {
  const std::size_t each = stack_bytes + page();
  for (std::size_t done = 0; done < s.count; done += batch) {
    void* p = mmap(nullptr, each * batch, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("page_floor: mmap");
      std::exit(1);
    }
    char* base = static_cast<char*>(p);
    madvise(base, each * batch, MADV_NOHUGEPAGE);
    // One process_madvise for the batch's guards, as weft does; page by page where refused.
    iovec guards[batch];
    for (std::size_t i = 0; i < batch; ++i) guards[i] = iovec{base + i * each, page()};
    static const int self = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0u));
    if (self < 0 || syscall(SYS_process_madvise, self, guards, batch, MADV_GUARD_INSTALL, 0u) !=
                        static_cast<long>(batch * page())) {
      for (auto& g : guards)
        if (madvise(g.iov_base, page(), MADV_GUARD_INSTALL) != 0)
          mprotect(g.iov_base, page(), PROT_NONE);
    }
    s.batches.push_back(base);
    for (std::size_t i = 0; i < batch && done + i < s.count; ++i)
      base[(i + 1) * each - 256] = 1;  // the top page: the first frames
  }
}

void retouch(share& s) {
  const std::size_t each = stack_bytes + page();
  for (char* base : s.batches)
    for (std::size_t i = 0; i < batch; ++i) base[(i + 1) * each - 256] += 1;
}

template <class F>
double timed(std::vector<share>& shares, F f) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (auto& s : shares) threads.emplace_back([&s, f] { f(s); });
  for (auto& t : threads) t.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1'000'000;
  for (unsigned threads = 1; threads <= 2; ++threads) {
    std::vector<share> shares(threads);
    for (unsigned t = 0; t < threads; ++t) shares[t].count = n / threads + (t < n % threads);
    const double map_touch = timed(shares, map_and_touch);
    const double again = timed(shares, retouch);
    std::printf("floor threads=%u count=%zu map_touch_s=%.3f retouch_s=%.3f\n", threads, n,
                map_touch, again);
    std::fflush(stdout);
    for (auto& s : shares)
      for (char* base : s.batches) munmap(base, (stack_bytes + page()) * batch);
  }
}
