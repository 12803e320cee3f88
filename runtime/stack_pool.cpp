#include "stack_pool.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <system_error>

namespace weft::detail {
namespace {

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13: guard pages in page tables, no extra VMA
#endif

// Stacks the depot keeps ready once they have gone untaken for a scavenge period.
constexpr std::size_t depot_keep = 4096;
// How long a pooled stack sits untaken before its deep pages, or beyond depot_keep the stack
// itself, go back to the kernel: long enough that a workload's steady rounds reuse what they
// had, short enough that a burst's memory does not linger (jemalloc's dirty decay is 10 s).
constexpr std::int64_t scavenge_period_ns = 1'000'000'000;
// Stacks the scavenger takes out of the depot per hold of its lock.
constexpr std::size_t scavenge_chunk = 4096;
// A stack going back to the depot keeps its top this committed (where a green thread's first
// frames land, so reuse faults nothing in) and gives the kernel the pages below: one deep
// recursion does not hold memory for ever.
constexpr std::size_t keep_committed = 16 * 1024;

std::size_t round_up(std::size_t n, std::size_t to) {
  return (n + to - 1) / to * to;
}

constexpr std::size_t max_advise_batch = 64;

// A pidfd for this process, reopened after a fork (a pidfd names a process, and a forked child
// must not advise its parent's memory); -1 where the kernel has none.
int self_pidfd() {
  static spinlock lock;
  static int fd = -1;
  static pid_t fd_pid = 0;
  const pid_t pid = getpid();
  lock.lock();
  if (fd_pid != pid) {
    if (fd >= 0) close(fd);  // inherited across fork: it names the parent
    fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0u));
    fd_pid = pid;
  }
  const int result = fd;
  lock.unlock();
  return result;
}

// One process_madvise call for up to max_advise_batch ranges of this process (Linux >= 6.13 for
// any advice): a syscall costs microseconds on a virtual machine, and stacks come by the
// thousand. False if the kernel refused; the caller then advises range by range.
bool advise_batch(const iovec* iov, std::size_t n, int advice) {
  const int pidfd = self_pidfd();
  if (pidfd < 0 || n == 0 || n > max_advise_batch) return n == 0;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < n; ++i) bytes += iov[i].iov_len;
  return syscall(SYS_process_madvise, pidfd, iov, n, advice, 0u) == static_cast<long>(bytes);
}

// MADV_GUARD_INSTALL where the kernel has it; else mprotect guards, rationed so that stacks
// cannot exhaust vm.max_map_count (each such guard splits the mapping: 2 VMAs).
// WEFT_STACK_GUARDS=mprotect[:budget] forces the fallback (read once, at the first stack).
class guard_policy {
 public:
  guard_policy() {
    long max_maps = 65530;
    std::ifstream f("/proc/sys/vm/max_map_count");
    if (f) f >> max_maps;
    long budget = max_maps / 4;
    const char* forced = std::getenv("WEFT_STACK_GUARDS");
    if (forced && std::strncmp(forced, "mprotect", 8) == 0) {
      if (forced[8] == ':') budget = std::atol(forced + 9);
    } else {
      const std::size_t pg = page_size();
      void* p = mmap(nullptr, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p != MAP_FAILED) {
        madvise_guards_ = madvise(p, pg, MADV_GUARD_INSTALL) == 0;
        munmap(p, 2 * pg);
      }
    }
    mprotect_budget_.store(budget, std::memory_order_relaxed);
  }
  // What the last stack got: "madvise", "mprotect" or "none".
  const char* last_kind() const noexcept { return last_kind_.load(std::memory_order_relaxed); }
  // Guards the first page of each of `n` stacks `stride` bytes apart from `first`: with
  // MADV_GUARD_INSTALL, one process_madvise call for the lot (a syscall costs microseconds on a
  // virtual machine, and a million stacks would pay it a million times).
  void install_batch(char* first, std::size_t stride, std::size_t n) {
    if (madvise_guards_ && n > 1) {
      iovec iov[max_advise_batch];
      bool all = n <= max_advise_batch;
      for (std::size_t i = 0; all && i < n; ++i) iov[i] = iovec{first + i * stride, page_size()};
      if (all && advise_batch(iov, n, MADV_GUARD_INSTALL)) {
        last_kind_.store("madvise", std::memory_order_relaxed);
        return;
      }
    }
    for (std::size_t i = 0; i < n; ++i) install(first + i * stride);
  }
  void install(void* base) {
    const std::size_t pg = page_size();
    if (madvise_guards_ && madvise(base, pg, MADV_GUARD_INSTALL) == 0) {
      last_kind_.store("madvise", std::memory_order_relaxed);
      return;
    }
    if (mprotect_budget_.fetch_sub(1, std::memory_order_relaxed) > 0) {
      if (mprotect(base, pg, PROT_NONE) == 0) {
        last_kind_.store("mprotect", std::memory_order_relaxed);
        return;
      }
    }
    last_kind_.store("none", std::memory_order_relaxed);
    bool expected = false;
    if (warned_.compare_exchange_strong(expected, true)) {
      std::fprintf(stderr,
                   "weft: warning: green-thread stacks are now mapped WITHOUT guard pages: this "
                   "kernel lacks MADV_GUARD_INSTALL and the mprotect guards would exhaust "
                   "vm.max_map_count. Raise it (sysctl -w vm.max_map_count=1048576) to keep "
                   "overflow detection.\n");
    }
  }

 private:
  bool madvise_guards_ = false;
  std::atomic<long> mprotect_budget_{0};
  std::atomic<bool> warned_{false};
  std::atomic<const char*> last_kind_{"none"};
};

guard_policy& guards() {
  static guard_policy g;
  return g;
}

}  // namespace

const char* stack_guard_kind() noexcept {
  return guards().last_kind();
}

std::size_t page_size() noexcept {
  static const std::size_t pg = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return pg;
}

void* stack_span::usable_bottom() const noexcept {
  return static_cast<char*>(base) + page_size();
}

stack_depot::stack_depot(std::size_t default_size)
    : default_size_(round_up(default_size < 16 * 1024 ? 16 * 1024 : default_size, page_size()) +
                    page_size()) {}

std::size_t stack_depot::mapping_size(std::size_t size) const noexcept {
  return size == 0 ? default_size_ : round_up(size, page_size()) + page_size();
}

stack_depot::sized_pool& stack_depot::pool_for(std::size_t each) {
  for (auto& p : sized_)
    if (p.each == each) return p;
  sized_.push_back(sized_pool{each, {}, 0});
  return sized_.back();
}

stack_span stack_depot::take_sized(std::size_t each) {
  lock_.lock();
  for (auto& p : sized_) {
    if (p.each != each || p.free.empty()) continue;
    void* base = p.free.back();
    p.free.pop_back();
    p.low_water = std::min(p.low_water, p.free.size());
    publish_pooled();
    lock_.unlock();
    return stack_span{base, each};
  }
  lock_.unlock();
  return map(each - page_size());
}

void stack_depot::give_sized(stack_span s) noexcept {
  lock_.lock();
  try {
    pool_for(s.size).free.push_back(s.base);
    publish_pooled();
  } catch (...) {  // no memory for the pool's bookkeeping: unmap it instead
    lock_.unlock();
    unmap(s);
    return;
  }
  lock_.unlock();
}

void stack_depot::ensure_sized(std::size_t size) {
  const std::size_t each = mapping_size(size);
  lock_.lock();
  bool have = false;
  for (auto& p : sized_) have = have || (p.each == each && !p.free.empty());
  lock_.unlock();
  if (!have) give_sized(map(size));
}

stack_depot::~stack_depot() {
  for (auto& p : sized_)
    for (void* base : p.free) unmap(stack_span{base, p.each});
  std::vector<void*> all(fresh_.begin(), fresh_.end());
  all.insert(all.end(), clean_.begin(), clean_.end());
  release(std::move(all));
}

// Unmaps stacks, one munmap per run of neighbours (stacks mapped one after another usually
// are): a million stacks come back in a few thousand calls, not a million.
void stack_depot::release(std::vector<void*> stacks) noexcept {
  std::sort(stacks.begin(), stacks.end());
  for (std::size_t i = 0; i < stacks.size();) {
    std::size_t j = i + 1;
    while (j < stacks.size() &&
           static_cast<char*>(stacks[j]) == static_cast<char*>(stacks[j - 1]) + default_size_)
      ++j;
    munmap(stacks[i], (j - i) * default_size_);
    regions_.remove(stacks[i], (j - i) * default_size_);
    i = j;
  }
  mapped_.fetch_sub(stacks.size(), std::memory_order_relaxed);
  reserved_bytes_.fetch_sub(stacks.size() * default_size_, std::memory_order_relaxed);
}

// Takes up to `n` of the oldest stacks out of `from` (the front: the coldest).
static void take_oldest(std::deque<void*>& from, std::size_t n, std::vector<void*>& into) {
  n = std::min(n, from.size());
  into.insert(into.end(), from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n));
  from.erase(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n));
}

std::size_t stack_depot::trim(std::size_t keep) noexcept {
  std::lock_guard scavenger_out(scavenging_);
  std::vector<void*> excess;
  lock_.lock();
  // Keep the most recently used (the back of fresh_: warmest in cache); release the rest.
  const std::size_t pooled = fresh_.size() + clean_.size();
  if (pooled > keep) {
    take_oldest(clean_, pooled - keep, excess);
    take_oldest(fresh_, pooled - keep - excess.size(), excess);
  }
  fresh_low_water_ = std::min(fresh_low_water_, fresh_.size());
  std::vector<stack_span> sized;  // trimmed whole: other sizes are rare, and large
  for (auto& p : sized_) {
    for (void* base : p.free) sized.push_back(stack_span{base, p.each});
    p.free.clear();
    p.low_water = 0;
  }
  publish_pooled();
  lock_.unlock();
  const std::size_t n = excess.size() + sized.size();
  release(std::move(excess));
  for (const stack_span& span : sized) unmap(span);
  return n;
}

std::size_t stack_depot::scavenge(std::int64_t now) noexcept {
  if (now - last_scavenge_ns_ < scavenge_period_ns) return 0;
  last_scavenge_ns_ = now;
  std::lock_guard alone(scavenging_);
  std::vector<stack_span> idle_sized;  // other sizes: unmapped once untaken for a period
  lock_.lock();
  std::size_t idle_left = std::min(fresh_low_water_, fresh_.size());  // the oldest, untaken
  for (auto& p : sized_) {
    for (std::size_t i = 0; i < p.low_water; ++i)
      idle_sized.push_back(stack_span{p.free[i], p.each});
    p.free.erase(p.free.begin(), p.free.begin() + static_cast<std::ptrdiff_t>(p.low_water));
    p.low_water = p.free.size();
  }
  publish_pooled();
  lock_.unlock();
  std::size_t unmapped = idle_sized.size();
  for (const stack_span& span : idle_sized) unmap(span);
  // The default size in chunks: workers giving and taking stacks never wait on the lock behind
  // a burst's million while it is sorted out.
  std::vector<void*> idle, excess;
  idle.reserve(scavenge_chunk);
  while (idle_left > 0) {
    idle.clear();
    lock_.lock();
    take_oldest(fresh_, std::min(idle_left, scavenge_chunk), idle);
    const std::size_t others = fresh_.size() + clean_.size();
    const std::size_t room = depot_keep > others ? depot_keep - others : 0;
    publish_pooled();
    lock_.unlock();
    if (idle.empty()) break;  // workers took the rest meanwhile
    idle_left -= idle.size();
    excess.clear();
    if (idle.size() > room) {
      excess.assign(idle.begin() + static_cast<std::ptrdiff_t>(room), idle.end());
      idle.resize(room);
    }
    unmapped += excess.size();
    release(std::move(excess));
    release_deep_pages(idle);
    lock_.lock();
    clean_.insert(clean_.end(), idle.begin(), idle.end());
    publish_pooled();
    lock_.unlock();
  }
  lock_.lock();
  fresh_low_water_ = fresh_.size();  // the next period starts now
  lock_.unlock();
  return unmapped;
}

stack_span stack_depot::map(std::size_t size) {
  stack_span one;
  map_batch(size, &one, 1);
  return one;
}

std::size_t stack_depot::map_batch(std::size_t size, stack_span* out, std::size_t n) {
  const std::size_t each = size == 0 ? default_size_ : round_up(size, page_size()) + page_size();
  void* p = mmap(nullptr, each * n, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED && n > 1) return map_batch(size, out, 1);
  if (p == MAP_FAILED) {
    throw std::system_error(
        errno, std::generic_category(),
        "weft: cannot map a green-thread stack of " + std::to_string(each) + " bytes");
  }
  try {
    regions_.add(p, each * n);
  } catch (...) {
    munmap(p, each * n);
    throw;
  }
  madvise(p, each * n, MADV_NOHUGEPAGE);  // a huge page would commit 2 MiB per stack
  for (std::size_t i = 0; i < n; ++i)
    out[i] = stack_span{static_cast<char*>(p) + i * each, each, true};
  guards().install_batch(static_cast<char*>(p), each, n);
  mapped_.fetch_add(n, std::memory_order_relaxed);
  reserved_bytes_.fetch_add(n * each, std::memory_order_relaxed);
  return n;
}

void stack_depot::unmap(stack_span s) noexcept {
  munmap(s.base, s.size);
  regions_.remove(s.base, s.size);
  mapped_.fetch_sub(1, std::memory_order_relaxed);
  reserved_bytes_.fetch_sub(s.size, std::memory_order_relaxed);
}

std::size_t stack_depot::take(stack_span* out, std::size_t n) noexcept {
  lock_.lock();
  std::size_t got = 0;
  for (auto* from : {&fresh_, &clean_}) {
    while (got < n && !from->empty()) {
      out[got++] = stack_span{from->back(), default_size_};
      from->pop_back();
    }
  }
  fresh_low_water_ = std::min(fresh_low_water_, fresh_.size());
  publish_pooled();
  lock_.unlock();
  return got;
}

void stack_depot::release_deep_pages(const std::vector<void*>& stacks) noexcept {
  const std::size_t pg = page_size();
  if (default_size_ <= pg + keep_committed) return;
  const std::size_t deep = default_size_ - pg - keep_committed;
  const std::size_t n = stacks.size();
  for (std::size_t first = 0; first < n; first += max_advise_batch) {
    const std::size_t k = std::min(max_advise_batch, n - first);
    iovec iov[max_advise_batch];
    for (std::size_t i = 0; i < k; ++i)
      iov[i] = iovec{static_cast<char*>(stacks[first + i]) + pg, deep};
    if (advise_batch(iov, k, MADV_DONTNEED)) continue;
    for (std::size_t i = 0; i < k; ++i) madvise(iov[i].iov_base, deep, MADV_DONTNEED);
  }
}

void stack_depot::give(const stack_span* in, std::size_t n) noexcept {
  lock_.lock();
  for (std::size_t i = 0; i < n; ++i) fresh_.push_back(in[i].base);
  publish_pooled();
  lock_.unlock();
}

stack_cache::~stack_cache() {
  give_back_all();
}

void stack_cache::give_back_all() noexcept {
  depot_.give(items_, count_);
  set_count(0);
}

stack_span stack_cache::get(std::size_t size) {
  const std::size_t each = depot_.mapping_size(size);
  if (each != depot_.default_size()) return depot_.take_sized(each);
  if (count_ == 0) refill();
  set_count(count_ - 1);
  return items_[count_];
}

void stack_cache::ensure_available() {
  if (count_ == 0) refill();
}

// From the depot, else freshly mapped in a batch (one mmap for several stacks). Throws
// std::system_error when not even one stack can be mapped.
void stack_cache::refill() {
  set_count(depot_.take(items_, capacity / 2));
  if (count_ == 0) set_count(depot_.map_batch(0, items_, map_batch_size));
}

void stack_cache::put(stack_span s) noexcept {
  if (s.size != depot_.default_size()) {
    depot_.give_sized(s);
    return;
  }
  if (count_ == capacity) {
    depot_.give(items_ + capacity / 2, capacity / 2);
    set_count(capacity / 2);
  }
  items_[count_] = s;
  set_count(count_ + 1);
}

}  // namespace weft::detail
