#include "chaos.hpp"

#if WEFT_CHAOS
#include <sched.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace weft::detail::chaos {
namespace {

std::uint64_t base_seed() noexcept {
  static const std::uint64_t seed = [] {
    std::uint64_t s = 1;
    if (const char* env = std::getenv("WEFT_CHAOS_SEED")) s = std::strtoull(env, nullptr, 10);
    std::fprintf(stderr, "weft: chaos schedule, WEFT_CHAOS_SEED=%llu\n",
                 static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

std::uint64_t next() noexcept {
  static std::atomic<std::uint64_t> threads{0};
  thread_local std::uint64_t state = 0;
  if (state == 0) {  // splitmix64 of (seed, thread order): never zero for xorshift
    std::uint64_t z = base_seed() * 0x9E3779B97F4A7C15ULL + threads.fetch_add(1) + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    state = (z ^ (z >> 31)) | 1;
  }
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 2685821657736338717ULL;
}

void pause_for(unsigned n) noexcept {
  for (unsigned i = 0; i < n; ++i) __builtin_ia32_pause();
}

}  // namespace

void point() noexcept {
  const std::uint64_t r = next();
  const unsigned roll = static_cast<unsigned>(r % 1000);
  if (roll < 850) return;
  if (roll < 940) {
    pause_for(static_cast<unsigned>((r >> 20) % 256) + 1);
  } else if (roll < 985) {
    sched_yield();
  } else {
    timespec ts{0, static_cast<long>((r >> 20) % 50'000) + 1'000};
    nanosleep(&ts, nullptr);
  }
}

void spin() noexcept {
  const std::uint64_t r = next();
  if (r % 1000 < 800) return;
  pause_for(static_cast<unsigned>((r >> 20) % 64) + 1);
}

bool chance(unsigned per_mille) noexcept {
  return next() % 1000 < per_mille;
}

}  // namespace weft::detail::chaos
#endif
