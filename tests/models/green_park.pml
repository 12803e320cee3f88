/* A green thread's park against concurrent wakers: select over two channels with a deadline
 * (channels/select.cpp, runtime/park.cpp: park_switch; runtime/scheduler.cpp: after_switch;
 * include/weft/detail/waiter.hpp: claim, claim_pending, complete; runtime/timer_heap.*:
 * fire_due, cancel).
 *
 * The green thread locks both channels, queues one node on each (both pointing at its one
 * waiter, which lives on its stack), and switches out. Only then, on the worker's own stack,
 * is its timer queued and are the channel locks released: nobody can wake it before its context
 * is saved. A sender on either channel, and the timer, race to claim the waiter with one CAS;
 * a sender hands its value over with claim_pending / complete. Once resumed, the green thread
 * takes its timer back out (timer_heap::cancel) and its losing node, then returns: its stack,
 * with the waiter and the timer node, is gone.
 *
 * Safety: resumed once, and never before its context is saved; exactly one party wins; a value
 * is either delivered once (with the winner's case) or kept by its sender, never lost, never
 * both; nobody touches the waiter or the timer node once the green thread has returned.
 * Liveness (at quiescence): the green thread has returned.
 *
 * MUTANT_EARLY_UNLOCK: release the channel locks before the switch completes: a sender claims
 * the waiter and readies a green thread that is still running.
 * MUTANT_CLAIM_AFTER_REMOVE: fire_due takes a due timer out of the heap (which tells cancel()
 * it is gone) before it claims the waiter: the green thread, woken by a sender meanwhile,
 * returns without waiting for the heap's lock, and the timer's claim writes to a dead stack.
 */

#define WAITING 0
#define CLAIMING 1
#define NOTIFIED 2
#define TIMED_OUT 3

bit ch_lock[2];
bit linked[2];      /* the green thread's node on each channel's queue */
byte state;         /* waiter::state */
byte won_case = 255;
bit saved;          /* the green thread's context is saved (it is off its worker) */
bit runnable;
byte resumes;
bit gone;           /* the green thread returned: its waiter and timer node are dead */
byte delivered, kept;

bit heap_lock;
bit in_heap;        /* timer_node::heap != null */

inline lock(l) { atomic { l == 0 -> l = 1 } }
inline unlock(l) { l = 0 }

inline make_runnable() {
  atomic {
    assert(saved && !runnable && !gone);
    runnable = 1
  }
}

proctype green() {
  lock(ch_lock[0]);
  lock(ch_lock[1]);
  linked[0] = 1;
  linked[1] = 1;
#ifdef MUTANT_EARLY_UNLOCK
  unlock(ch_lock[0]);
  unlock(ch_lock[1]);
#endif
  saved = 1;  /* switch_out: from here the worker runs after_switch */
  lock(heap_lock); in_heap = 1; unlock(heap_lock);
#ifndef MUTANT_EARLY_UNLOCK
  unlock(ch_lock[0]);
  unlock(ch_lock[1]);
#endif
  /* parked until someone readies it */
  runnable;
  atomic { runnable = 0; saved = 0; resumes++ }
  assert(state == NOTIFIED || state == TIMED_OUT);
  /* timer_heap::cancel: a timer already out of the heap is not waited for */
  if
  :: in_heap -> lock(heap_lock); in_heap = 0; unlock(heap_lock)
  :: else -> skip
  fi;
  /* take the losing nodes out (the winner's channel is not touched again) */
  if
  :: state == NOTIFIED -> assert(won_case < 2); delivered++;
     lock(ch_lock[1 - won_case]); linked[1 - won_case] = 0; unlock(ch_lock[1 - won_case])
  :: else ->
     lock(ch_lock[0]); lock(ch_lock[1]);
     linked[0] = 0; linked[1] = 0;
     unlock(ch_lock[1]); unlock(ch_lock[0])
  fi;
  gone = 1
}

/* A sender on channel `c` finding the green thread's node queued there. */
proctype sender(byte c) {
  bit won;
  linked[c] || gone;  /* it comes along once the node is queued (or all is over) */
  lock(ch_lock[c]);
  if
  :: linked[c] ->
     linked[c] = 0;
     atomic {
       assert(!gone);
       if :: state == WAITING -> state = CLAIMING; won = 1 :: else -> won = 0 fi
     }
     if
     :: won -> won_case = c; unlock(ch_lock[c]);
        atomic { assert(!gone); state = NOTIFIED };  /* complete() */
        make_runnable()
     :: else -> unlock(ch_lock[c]); kept++
     fi
  :: else -> unlock(ch_lock[c]); kept++  /* no receiver queued: it buffers or parks */
  fi
}

/* A worker firing due timers (the deadline has passed by now). */
proctype timer_firer() {
  bit won;
  in_heap || gone;  /* due once queued */
  lock(heap_lock);
  if
  :: in_heap ->
#ifdef MUTANT_CLAIM_AFTER_REMOVE
     in_heap = 0;
#endif
     atomic {
       assert(!gone);
       if :: state == WAITING -> state = TIMED_OUT; won = 1 :: else -> won = 0 fi
     }
#ifndef MUTANT_CLAIM_AFTER_REMOVE
     in_heap = 0;
#endif
     unlock(heap_lock);
     if :: won -> make_runnable() :: else -> skip fi
  :: else -> unlock(heap_lock)
  fi
}

active proctype quiescence() {
end_check:
  timeout ->
    assert(gone && resumes == 1);
    assert(delivered + kept == 2 && delivered <= 1);
    assert((state == NOTIFIED) == (delivered == 1))
}

init {
  atomic {
    run green();
    run sender(0);
    run sender(1);
    run timer_firer()
  }
}
