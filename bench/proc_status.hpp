// Reads a field of /proc/self/status (VmRSS:, VmPTE:, ...) in KiB: how the park benchmarks
// measure memory per task.
#pragma once

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace weft_bench {

inline long status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::size_t len = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, len, key) == 0) return std::atol(line.c_str() + len);
  return 0;
}

}  // namespace weft_bench
