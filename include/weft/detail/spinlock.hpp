// Internal: a tiny test-and-test-and-set lock for the runtime's short critical sections
// (waiter lists, queues). Never held across a switch except through park(), which releases it
// only once the parked green thread is fully suspended, on the same OS thread that took it.
//
// A lock may be biased to one thread: a channel made on the worker of a single-worker runtime
// (every green thread that uses it runs there), or one that a worker has used alone for a long
// run of operations (chan_core's last_user). Its owner then enters with plain stores and loads,
// no locked instruction: it announces itself (`biased_`), then checks the bias still holds. Any
// other thread first revokes the bias (revoke_bias: mark `owner_` as being revoked, a barrier on
// every core running the process, wait for the owner to leave, then clear `owner_`; meanwhile
// everyone else waits for it to clear), and then takes the lock itself. The announcement and the
// revoker's mark form a Dekker pair whose owner side needs only a compiler fence, the revoker
// paying for a membarrier(2) (runtime/queue_mode.hpp). A bias is set only by a thread holding
// the lock's own flag (bias_to_holder), so one that took the flag meanwhile looks again once it
// holds it. Invariants:
//   - `owner_` goes from 0 to a thread (set under the flag) to `revoking` to 0;
//   - while `owner_` names a thread, a holder other than it is a revoker waiting for it to leave;
//   - after revoke_bias returns, no biased hold is in progress or can begin;
//   - `holds_biased_` is true exactly while a biased hold is in progress (read by its holder).
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

void spin_pause(unsigned& spins) noexcept;  // pause, then sched_yield after a while

class spinlock {
 public:
  void lock() noexcept {
    const std::uintptr_t owner = owner_.load(std::memory_order_relaxed);
    if (owner == 0) [[likely]] {
      if (!locked_.exchange(true, std::memory_order_acquire)) [[likely]] {
        // A holder before us may have biased it meanwhile: its owner may be inside.
        if (owner_.load(std::memory_order_relaxed) != 0) [[unlikely]]
          revoke_bias();
        return;
      }
    } else if (owner == this_thread() && lock_biased(owner)) {
      return;
    }
    lock_slow();
  }
  bool try_lock() noexcept {
    if (const std::uintptr_t owner = owner_.load(std::memory_order_relaxed)) [[unlikely]] {
      if (owner == this_thread() && lock_biased(owner)) return true;
      revoke_bias();
    }
    if (locked_.load(std::memory_order_relaxed) ||
        locked_.exchange(true, std::memory_order_acquire))
      return false;
    if (owner_.load(std::memory_order_relaxed)) [[unlikely]]
      revoke_bias();
    return true;
  }
  void unlock() noexcept {
    if (holds_biased_) [[unlikely]] {
      holds_biased_ = false;
      biased_.store(false, std::memory_order_release);
      return;
    }
    locked_.store(false, std::memory_order_release);
  }

  // Biases a lock nobody else can see yet to `thread` (this_thread() of its owner; 0: none).
  void bias_to(std::uintptr_t thread) noexcept { owner_.store(thread, std::memory_order_relaxed); }
  // Biases the lock to the calling thread, which holds it through its flag (not biased).
  void bias_to_holder() noexcept { owner_.store(this_thread(), std::memory_order_relaxed); }
  bool biased() const noexcept { return owner_.load(std::memory_order_relaxed) != 0; }
  // The calling thread's identity as bias_to takes it (its thread pointer: never 0 or 1).
  static std::uintptr_t this_thread() noexcept {
    return reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer());
  }
  // True while the caller holds the lock through its bias: no other thread can hold it.
  bool held_through_bias() const noexcept { return holds_biased_; }

 private:
  bool lock_biased(std::uintptr_t self) noexcept {
    biased_.store(true, std::memory_order_relaxed);
    // A revoker's membarrier orders the store before the load; the compiler must not reorder.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (owner_.load(std::memory_order_relaxed) == self) {
      holds_biased_ = true;
      return true;
    }
    biased_.store(false, std::memory_order_release);  // release: the revoker may read this one
    return false;
  }
  // Ends the bias (or waits for the revoker that is ending it): returns once `owner_` is null.
  void revoke_bias() noexcept;  // runtime/queue_mode.cpp
  // lock() past its fast paths: revokes a bias, spins for the flag, looks at the bias again.
  void lock_slow() noexcept;  // runtime/queue_mode.cpp
  static constexpr std::uintptr_t revoking = 1;

  std::atomic<bool> locked_{false};
  std::atomic<bool> biased_{false};  // the owner is inside, or about to check the bias
  bool holds_biased_ = false;
  std::atomic<std::uintptr_t> owner_{0};  // the thread biased to, `revoking`, or 0: none
};

}  // namespace weft::detail
