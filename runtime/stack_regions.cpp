#include "stack_regions.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace weft::detail {

void stack_regions::add(void* base, std::size_t bytes) {
  std::lock_guard lk(mu_);
  bytes_at_[reinterpret_cast<std::uintptr_t>(base)] = bytes;
}

void stack_regions::remove(void* base, std::size_t bytes) noexcept {
  const auto start = reinterpret_cast<std::uintptr_t>(base);
  const std::uintptr_t end = start + bytes;
  std::lock_guard lk(mu_);
  auto it = bytes_at_.upper_bound(start);
  if (it != bytes_at_.begin()) --it;
  while (it != bytes_at_.end() && it->first < end) {
    const std::uintptr_t r_start = it->first, r_end = it->first + it->second;
    if (r_end <= start) {
      ++it;
      continue;
    }
    it = bytes_at_.erase(it);
    // What is left on either side stays mapped. (Inserting may throw only on a failed node
    // allocation; the range is then forgotten and its pages no longer counted.)
    try {
      if (r_start < start) bytes_at_.emplace(r_start, start - r_start);
      if (end < r_end) it = bytes_at_.emplace(end, r_end - end).first;
    } catch (...) {
    }
  }
}

std::uint64_t stack_regions::committed_bytes() const noexcept {
  static const std::size_t pg = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  std::uint64_t pages = 0;
  std::lock_guard lk(mu_);
  try {
    for (const auto& [start, bytes] : bytes_at_) {
      const std::size_t n = bytes / pg;
      if (residency_.size() < n) residency_.resize(n);
      if (mincore(reinterpret_cast<void*>(start), bytes, residency_.data()) != 0) continue;
      pages += static_cast<std::uint64_t>(
          std::count_if(residency_.begin(), residency_.begin() + static_cast<std::ptrdiff_t>(n),
                        [](unsigned char v) { return v & 1; }));
    }
  } catch (...) {  // the buffer could not grow: what was counted so far
  }
  return pages * pg;
}

}  // namespace weft::detail
