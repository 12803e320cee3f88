// Private queues: a worker whose green threads no other worker may take (the monitor judged them
// not worth moving: runtime/monitor.cpp) works its run-next slot and ring with plain loads and
// stores, as in single-threaded mode, instead of a locked exchange and a CAS per green thread.
//
// The owner enters private mode at a schedule point, after every thief has left (`stealable`
// and `stealers` form a Dekker pair: both sides use seq_cst). It leaves on its own at the next
// schedule point once its queue is movable again. A worker stuck in one green thread cannot
// reach a schedule point, so the monitor revokes its private mode from outside: it clears
// `plain_ok`, forces a full barrier on every core with membarrier(2) (the asymmetric fence: the
// owner pays for no fence of its own), then waits for the owner to leave any plain operation it
// was inside (`in_op`) before it lets thieves in.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

struct worker;

// Whether membarrier's private expedited command works here (registered on first call). Without
// it no worker goes private. Never under TSan, which cannot model the asymmetric fence.
bool private_queues_supported() noexcept;
// membarrier(2) for this process is registered (private_queues_supported() registers it): a full
// barrier on every core running one of its threads. Only valid when that returned true.
void asymmetric_barrier() noexcept;

// Whether locks may be biased to a thread (spinlock): membarrier(2) works, and not under TSan.
bool lock_bias_allowed() noexcept;

// The monitor's: ends `w`'s private mode from outside and lets thieves take its queue.
void revoke_private_queue(worker& w) noexcept;

// A thief's pass to `v`'s queue: false (and nothing to undo) when `v` keeps it private.
bool enter_as_thief(worker& v) noexcept;
void leave_as_thief(worker& v) noexcept;

}  // namespace weft::detail
