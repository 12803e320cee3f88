/* A channel waiter claimed without a CAS by the holder of the channel's biased lock, against a
 * canceller on another thread (channels/chan_core.cpp: claim_through_bias; runtime/cancel.cpp:
 * cancel_begin, cancel_barrier, cancel_batch::claim).
 *
 * The notifier (the single worker, holding the lock through its bias, so no other notifier can
 * claim this waiter, and the runtime's timers and shutdown run on its own thread) loads the
 * waiter's state; if unclaimed it announces itself (notifying = 1), looks for a cancellation
 * request, and with none stores `claiming` plainly; with one it claims with a CAS. The canceller
 * sets the request with an RMW, runs membarrier(2), and backs off if it sees the announcement;
 * otherwise it claims with a CAS.
 *
 * Memory: x86-TSO for the notifier (its stores buffered; its CAS drains them). The canceller's
 * RMW and its loads after the barrier see memory.
 *
 * Safety: at most one party claims the waiter.
 * Liveness (at quiescence): the waiter was claimed exactly once (the notifier always gets it
 * unless the canceller did).
 *
 * MUTANT_NO_BARRIER: the canceller skips membarrier: the announcement and the plain claim are
 * still buffered when it reads notifying = 0 and claims too.
 * MUTANT_NO_ANNOUNCE: the canceller ignores `notifying`: its CAS lands before the notifier's
 * buffered plain store, and both win.
 * MUTANT_NO_REQUEST_CHECK: the notifier claims plainly without looking for a request.
 */

#define STATE 0
#define NOTIFYING 1
#define REQUEST 2
#define NVARS 3
#define BUFSZ 3

#define WAITING 0
#define CLAIMING 1
#define CANCELLED 2

byte mem[NVARS];
byte bvar[BUFSZ];
byte bval[BUFSZ];
byte bn;

byte winners;
byte finished;

active proctype flush_buffer() {
  byte i;
end_flush:
  do
  :: atomic {
       bn > 0 ->
       mem[bvar[0]] = bval[0];
       for (i : 1 .. BUFSZ - 1) { bvar[i - 1] = bvar[i]; bval[i - 1] = bval[i] }
       bn--
     }
  od
}

inline notifier_store(v, x) {
  atomic { bn < BUFSZ -> bvar[bn] = v; bval[bn] = x; bn++ }
}

inline notifier_load(v, out) {
  atomic {
    out = mem[v];
    for (j : 0 .. BUFSZ - 1) { if :: j < bn && bvar[j] == v -> out = bval[j] :: else -> skip fi }
  }
}

proctype notifier() {
  byte j, s, r;
  notifier_load(STATE, s);
  if
  :: s == WAITING ->
     notifier_store(NOTIFYING, 1);
     notifier_load(REQUEST, r);
#ifdef MUTANT_NO_REQUEST_CHECK
     r = 0;
#endif
     if
     :: r == 0 -> notifier_store(STATE, CLAIMING); winners++
     :: else ->
        atomic { bn == 0; if :: mem[STATE] == WAITING -> mem[STATE] = CLAIMING; winners++ :: else -> skip fi }
     fi
  :: else -> skip
  fi;
  finished++
}

proctype canceller() {
  mem[REQUEST] = 1;
#ifndef MUTANT_NO_BARRIER
  bn == 0;  /* membarrier: the notifier has passed a full barrier */
#endif
#ifndef MUTANT_NO_ANNOUNCE
  if
  :: mem[NOTIFYING] == 1 -> goto done
  :: else -> skip
  fi;
#endif
  atomic { if :: mem[STATE] == WAITING -> mem[STATE] = CANCELLED; winners++ :: else -> skip fi };
done:
  finished++
}

active proctype quiescence() {
end_check:
  timeout -> assert(finished == 2 && winners == 1)
}

/* Every step of the claimers checks the safety property. */
active proctype exclusive() {
end_watch:
  do
  :: atomic { winners > 1 -> assert(false) }
  od
}

init {
  atomic {
    run notifier();
    run canceller()
  }
}
