// The address ranges of every mapped green-thread stack (a batch mapped together is one range;
// unmapping a stack cuts it out), so that the pages the kernel has committed to them can be
// counted on demand with mincore. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

namespace weft::detail {

class stack_regions {
 public:
  void add(void* base, std::size_t bytes);
  void remove(void* base, std::size_t bytes) noexcept;
  // Bytes resident now in every mapped stack: one mincore per range, about a microsecond per
  // 32 stacks mapped together.
  std::uint64_t committed_bytes() const noexcept;

 private:
  mutable std::mutex mu_;
  std::map<std::uintptr_t, std::size_t> bytes_at_;  // start -> length; ranges never overlap
  mutable std::vector<unsigned char> residency_;    // mincore's output, reused
};

}  // namespace weft::detail
