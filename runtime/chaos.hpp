// The chaos schedule (built with -DWEFT_CHAOS=ON): at every protocol point the runtime may spin,
// yield or sleep for a moment, place a readied green thread at random (its worker's run-next
// slot, the back of its queue, or the global queue), steal before it looks at its own queue,
// and wake a condition variable's waiter spuriously. Races that need a rare interleaving then
// happen in every run. Each thread draws from its own generator, seeded from WEFT_CHAOS_SEED
// (printed at start) and the order in which threads first draw: rerun a failure with its seed.
// Without WEFT_CHAOS every call here is empty and inlined away.
#pragma once

namespace weft::detail::chaos {

#if WEFT_CHAOS
// May spin, yield or sleep up to 50 µs: only where no spinlock is held.
void point() noexcept;
// A short spin at most: for sections under a spinlock, between a store and the load it races.
void spin() noexcept;
// True with the given chance (in thousandths): a random decision.
bool chance(unsigned per_mille) noexcept;
#else
inline void point() noexcept {}
inline void spin() noexcept {}
inline bool chance(unsigned) noexcept {
  return false;
}
#endif

}  // namespace weft::detail::chaos
