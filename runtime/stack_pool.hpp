// Green-thread stacks: virtual reservations committed lazily by the kernel, with a guard page at
// the low end, recycled through a per-worker cache and a global depot.
//
// Giving a stack back costs a worker a push under a spinlock, nothing more: no system call. The
// kernel is asked for nothing on that path because a stack's first touch costs 36-47 us on a
// virtual machine and a workload that parks 10,000 green threads at a time reuses the same
// stacks every round (Go's daisy chain: 8 us per green thread when the depot unmapped beyond a
// fixed count, 1 us when it did not). Memory goes back in the background instead, as Go's
// scavenger and jemalloc's decay do: the monitor calls scavenge() every tick, and once per
// period the stacks that nobody took during the whole period (the depot's low-water mark) give
// the kernel their pages below the committed top, and beyond `depot_keep` are unmapped.
// Invariants: a stack is in exactly one place (a green thread, a worker's cache, fresh_, clean_,
// or the scavenger's hands, where no worker can take it); only the scavenger advises or unmaps a
// pooled stack; trim() and scavenge() exclude each other, so trim sees every pooled stack.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "stack_regions.hpp"
#include "weft/detail/spinlock.hpp"

namespace weft::detail {

struct stack_span {
  void* base = nullptr;  // lowest address of the mapping; the guard page is [base, base+page)
  std::size_t size = 0;  // whole mapping, guard included
  bool fresh = false;    // mapped and never run on: its first touch is a page fault
  void* usable_bottom() const noexcept;  // base + guard
  void* top() const noexcept { return static_cast<char*>(base) + size; }
};

// Maps and unmaps stacks; holds the global depot of the default size. Thread-safe.
class stack_depot {
 public:
  explicit stack_depot(std::size_t default_size);
  ~stack_depot();
  stack_depot(const stack_depot&) = delete;
  stack_depot& operator=(const stack_depot&) = delete;

  std::size_t default_size() const noexcept { return default_size_; }
  // Throws std::system_error (ENOMEM and friends) when the kernel will not map it.
  stack_span map(std::size_t size);
  // Maps up to `n` stacks of `size` (0: the default) with one mmap; returns how many (at least
  // one, else it throws).
  std::size_t map_batch(std::size_t size, stack_span* out, std::size_t n);
  // Unmaps pooled stacks beyond `keep`; returns how many.
  std::size_t trim(std::size_t keep) noexcept;
  // The monitor's periodic call (`now` in steady-clock ns); acts at most once per period: the
  // stacks pooled and untaken since the last period give back their deep pages, and those beyond
  // the depot's keep are unmapped. Returns how many were unmapped.
  std::size_t scavenge(std::int64_t now) noexcept;
  void unmap(stack_span s) noexcept;
  // Stacks of a size other than the default (spawn_options::stack_size), pooled per size like
  // the default ones (a fresh mapping costs its munmap's TLB shoot-down and its first touch).
  // take_sized maps one when none is pooled (std::system_error when it cannot); `each` is the
  // whole mapping, guard included.
  stack_span take_sized(std::size_t each);
  void give_sized(stack_span s) noexcept;
  // Makes sure a stack of `size` (as spawn_options gives it) is pooled, mapping one if need be:
  // so spawning throws std::system_error when none can be had, not the green thread's first run.
  void ensure_sized(std::size_t size);
  std::size_t mapping_size(std::size_t size) const noexcept;
  // Takes up to `n` pooled default-size stacks into `out`; returns how many.
  std::size_t take(stack_span* out, std::size_t n) noexcept;
  // Gives back `n` default-size stacks (pooled as they are: scavenge() trims them later).
  void give(const stack_span* in, std::size_t n) noexcept;

  std::uint64_t mapped() const noexcept { return mapped_.load(std::memory_order_relaxed); }
  std::uint64_t pooled() const noexcept { return pooled_.load(std::memory_order_relaxed); }
  // Address space of every mapped stack, guard pages included.
  std::uint64_t reserved_bytes() const noexcept {
    return reserved_bytes_.load(std::memory_order_relaxed);
  }
  // Of those, the bytes the kernel has committed (mincore: costs a microsecond per 32 stacks).
  std::uint64_t committed_bytes() const noexcept { return regions_.committed_bytes(); }

 private:
  void release(std::vector<void*> stacks) noexcept;
  void release_deep_pages(const std::vector<void*>& stacks) noexcept;
  void publish_pooled() noexcept {  // lock_ held
    std::size_t n = fresh_.size() + clean_.size();
    for (const auto& p : sized_) n += p.free.size();
    pooled_.store(n, std::memory_order_relaxed);
  }

  std::size_t default_size_;
  spinlock lock_;                    // guards fresh_, clean_, fresh_low_water_
  std::deque<void*> fresh_;          // given back since their last scavenge; taken first
  std::deque<void*> clean_;          // deep pages already given back to the kernel
  std::size_t fresh_low_water_ = 0;  // fewest in fresh_ since the last scavenge
  struct sized_pool {
    std::size_t each = 0;       // mapping size, guard included
    std::vector<void*> free;    // oldest first
    std::size_t low_water = 0;  // fewest in `free` since the last scavenge
  };
  std::vector<sized_pool> sized_;          // under lock_; a handful of distinct sizes at most
  sized_pool& pool_for(std::size_t each);  // lock_ held
  std::mutex scavenging_;                  // scavenge() against trim()
  std::int64_t last_scavenge_ns_ = 0;      // the monitor's alone
  std::atomic<std::uint64_t> mapped_{0};
  std::atomic<std::uint64_t> pooled_{0};  // free_.size(), readable without the lock
  std::atomic<std::uint64_t> reserved_bytes_{0};
  stack_regions regions_;
};

// A worker's private cache in front of the depot: no lock on the hot path.
class stack_cache {
 public:
  static constexpr std::size_t capacity = 64;
  explicit stack_cache(stack_depot& depot) : depot_(depot) {}
  ~stack_cache();
  stack_span get(std::size_t size);  // size 0: the default
  void put(stack_span s) noexcept;
  // Whether get(size) would hand out a stack never touched (its first touch a page fault of
  // tens of µs on a virtual machine); conservative when the cache is empty.
  bool next_is_fresh(std::size_t size) const noexcept {
    return size != 0 || count_ == 0 || items_[count_ - 1].fresh;
  }
  // Makes sure a default-size stack is at hand, mapping one now if the cache and the depot are
  // empty: so spawning throws std::system_error when no stack can be had, rather than the green
  // thread failing when it first runs.
  void ensure_available();
  // Hands every cached stack to the depot (a retiring spare worker keeps none).
  void give_back_all() noexcept;
  // Readable from any thread (stats); only the owning worker changes it.
  std::size_t pooled() const noexcept { return pooled_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::size_t map_batch_size = capacity / 2;
  void refill();
  void set_count(std::size_t n) noexcept {
    count_ = n;
    pooled_.store(n, std::memory_order_relaxed);
  }

  stack_depot& depot_;
  stack_span items_[capacity];
  std::size_t count_ = 0;
  std::atomic<std::size_t> pooled_{0};
};

std::size_t page_size() noexcept;
// How the most recently mapped stack is guarded: "madvise", "mprotect" or "none".
const char* stack_guard_kind() noexcept;

}  // namespace weft::detail
