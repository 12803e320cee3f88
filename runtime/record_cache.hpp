// Per-worker reuse of green-thread records, as Go keeps a per-P list of dead goroutines: a spawn
// takes the record of a green thread that finished on the same worker, with no allocator call.
// Task frames (weft/task.hpp) are reused the same way, in a cache of their own.
//
// Why not leave it to jemalloc's thread cache: spawn-heavy code frees records in bursts as large
// as the cooperative budget (128), which is also the size of jemalloc's cache for this size class;
// at 2 workers the cache then refilled and flushed a slab on every burst (half the records went
// through the arena, measured with its stats), and spawning was 5-10% slower than at 1 worker.
//
// Sizes are rounded up to classes 32 bytes apart, as jemalloc's own classes are in this range, so
// a class costs no more memory than the allocator would have used. Records of unusual size or
// alignment bypass the cache, and so does every record in the sanitizer builds (a reused record
// would hide a use after free). Only the owning worker's thread touches it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#include "green_thread.hpp"
#include "weft/detail/task.hpp"

namespace weft::detail {

// Blocks of `classes` sizes from `smallest`, 32 bytes apart, up to `per_class` of each.
template <std::size_t smallest_size, std::size_t classes, std::size_t per_class>
class block_cache {
  static constexpr std::size_t granule = 32;
  static constexpr std::size_t round_up(std::size_t n) noexcept {
    return (n + granule - 1) & ~(granule - 1);
  }
  static constexpr std::size_t smallest = round_up(smallest_size);

 public:
  // The size to allocate a record of `size` bytes with: its class's if it has one.
  static constexpr std::size_t alloc_size(std::size_t size) noexcept {
    const std::size_t rounded = round_up(size);
    return rounded < smallest + classes * granule ? rounded : size;
  }

  block_cache() = default;
  block_cache(const block_cache&) = delete;
  block_cache& operator=(const block_cache&) = delete;
  ~block_cache() { release_all(); }

  // A cached block of `size` bytes (an alloc_size()), or null.
  void* get(std::size_t size) noexcept {
    const std::size_t i = index(size);
    if (i >= classes || !heads_[i]) return nullptr;
    node* n = heads_[i];
    heads_[i] = n->next;
    --counts_[i];
    return n;
  }

  // Keeps `p`, a block of `size` bytes (default alignment), for reuse; false if it has no class
  // or its class is full.
  bool put(void* p, std::size_t size) noexcept {
    const std::size_t i = index(size);
    if (i >= classes || size != round_up(size) || counts_[i] == per_class) return false;
    heads_[i] = ::new (p) node{heads_[i]};
    ++counts_[i];
    return true;
  }

  // Gives every cached block back to the allocator.
  void release_all() noexcept {
    for (std::size_t i = 0; i < classes; ++i) {
      while (node* n = heads_[i]) {
        heads_[i] = n->next;
        runtime_free(n, smallest + i * granule);
      }
      counts_[i] = 0;
    }
  }

 private:
  struct node {
    node* next;
  };
  static constexpr std::size_t index(std::size_t size) noexcept {
    return size < smallest ? classes : (round_up(size) - smallest) / granule;
  }

  node* heads_[classes] = {};
  std::uint32_t counts_[classes] = {};
};

// Records: 192 to 288 bytes (a callable of a few pointers and a short name).
using record_cache = block_cache<sizeof(green_thread), 4, 256>;
// Task frames: 32 to 512 bytes; larger ones (a frame holding a buffer) go to the allocator.
using frame_cache = block_cache<32, 16, 128>;

}  // namespace weft::detail
