#include "queue_mode.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "chaos.hpp"
#include "scheduler.hpp"

namespace weft::detail {

namespace {

bool register_membarrier() noexcept {
#if WEFT_TSAN
  return false;
#else
  // WEFT_MEMBARRIER=0: run as on a kernel without it (tests the fallbacks).
  if (const char* env = std::getenv("WEFT_MEMBARRIER"); env && std::strcmp(env, "0") == 0)
    return false;
  const long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
  return syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

}  // namespace

// A full barrier on every core running a thread of this process: the owner's half of the
// Dekker pair that its plain operations do not pay for.
// It cannot fail once registered; if it ever did, opening the queue would race with its owner.
void asymmetric_barrier() noexcept {
  if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
  std::fprintf(stderr, "weft: membarrier failed after it was registered: %s\n",
               std::strerror(errno));
  std::abort();
}

bool private_queues_supported() noexcept {
  static const bool supported = register_membarrier();
  return supported;
}

bool lock_bias_allowed() noexcept {
#if WEFT_TSAN
  return false;  // TSan cannot model the asymmetric fence
#else
  return private_queues_supported();
#endif
}

std::uintptr_t lock_bias_for_new_channel() noexcept {
  worker* w = current_worker();
  return w && w->sched->single() && !w->spare && lock_bias_allowed() ? spinlock::this_thread() : 0;
}

void spinlock::lock_slow() noexcept {
  if (owner_.load(std::memory_order_relaxed) != 0) revoke_bias();
  unsigned spins = 0;
  while (locked_.exchange(true, std::memory_order_acquire)) {
    while (locked_.load(std::memory_order_relaxed)) spin_pause(spins);
  }
  if (owner_.load(std::memory_order_relaxed) != 0) revoke_bias();
}

void spinlock::revoke_bias() noexcept {
  unsigned spins = 0;
  for (;;) {
    std::uintptr_t owner = owner_.load(std::memory_order_acquire);
    if (owner == 0) return;
    if (owner != revoking &&
        owner_.compare_exchange_strong(owner, revoking, std::memory_order_relaxed)) {
      chaos::point();
      asymmetric_barrier();  // a lock is biased only where private_queues_supported()
      // From here the owner sees `revoking`; a hold it began before has set biased_.
      while (biased_.load(std::memory_order_acquire)) spin_pause(spins);
      owner_.store(0, std::memory_order_release);
      return;
    }
    spin_pause(spins);  // another thread is revoking it
  }
}

void revoke_private_queue(worker& w) noexcept {
  w.mode_lock.lock();
  if (w.plain_ok.load(std::memory_order_relaxed)) {
    w.plain_ok.store(false, std::memory_order_relaxed);
    chaos::point();
    asymmetric_barrier();
    // From here the owner's operations see plain_ok false; one that saw it true has set in_op.
    unsigned spins = 0;
    while (w.in_op.load(std::memory_order_acquire)) spin_pause(spins);
    w.stealable.store(true, std::memory_order_seq_cst);
    w.revocations.store(w.revocations.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
  }
  w.mode_lock.unlock();
}

bool enter_as_thief(worker& v) noexcept {
  if (!v.stealable.load(std::memory_order_relaxed)) return false;
  v.stealers.fetch_add(1, std::memory_order_seq_cst);
  chaos::spin();
  if (v.stealable.load(std::memory_order_seq_cst)) return true;
  v.stealers.fetch_sub(1, std::memory_order_release);
  return false;
}

void leave_as_thief(worker& v) noexcept {
  v.stealers.fetch_sub(1, std::memory_order_release);
}

void scheduler::change_queue_mode(worker& w, bool to_private) noexcept {
  w.mode_lock.lock();
  if (to_private) {
    // Close the door, then wait for the thieves already inside (each pass is a few hundred ns).
    w.stealable.store(false, std::memory_order_seq_cst);
    chaos::spin();
    unsigned spins = 0;
    while (w.stealers.load(std::memory_order_seq_cst) != 0) spin_pause(spins);
    w.plain_ok.store(true, std::memory_order_relaxed);
    w.mode_lock.unlock();
    return;
  }
  w.plain_ok.store(false, std::memory_order_relaxed);
  w.stealable.store(true, std::memory_order_seq_cst);  // publishes the plain stores before it
  w.mode_lock.unlock();
  // What queued here while private was for this worker alone: let an idle one help now.
  if (!w.local.empty()) wake_idle_worker(/*after_full_barrier=*/true);
}

}  // namespace weft::detail
