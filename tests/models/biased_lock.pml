/* The biased spinlock of channels (include/weft/detail/spinlock.hpp: lock, lock_biased,
 * unlock, bias_to_holder; runtime/queue_mode.cpp: spinlock::revoke_bias; runtime/park.cpp:
 * note_user, which biases a channel's lock to a worker that used it alone for a long run).
 *
 * The owner first holds the lock through its flag (an exchange) and, holding it, biases it to
 * itself; then it enters with plain stores and loads: store biased = 1, load owner; if the bias
 * still names it, it holds the lock, and unlock stores biased = 0. Otherwise it stores
 * biased = 0 and goes the way of everyone else. Another thread that finds the bias set revokes
 * it: CAS owner from the thread to REVOKING, membarrier(2), wait for biased to fall, then
 * owner = 0. One that finds REVOKING waits for 0. Everyone takes the flag with an exchange and
 * then looks at owner again (it may have been biased by the holder before), revoking if set.
 *
 * Memory: x86-TSO for the owner (a FIFO store buffer; loads forward from it; its exchange drains
 * it). The others' stores are drained at once (their CAS and exchange are locked, the stores
 * before the membarrier system call are serialised by it).
 *
 * Safety: no two threads are ever inside the lock at once.
 * Liveness (at quiescence): everyone finished (nobody waits for biased, owner or the flag).
 *
 * MUTANT_NO_MEMBARRIER: revoke without the barrier: the owner's biased = 1 is still buffered when
 * the revoker reads biased = 0, and both are inside.
 * MUTANT_CLEAR_BEFORE_WAIT: the revoker clears owner before it waits for the owner to leave (a
 * first draft did): a third thread sees no bias, takes the flag and joins the owner inside.
 * MUTANT_NO_RECHECK: a thread that took the flag does not look at owner again: it took it just
 * after the owner biased the lock and let go of the flag, and the owner enters through the bias.
 */

#define LOCKED 0
#define BIASED 1
#define OWNER 2
#define NVARS 3
#define BUFSZ 4
#define OPS 2

#define NONE 0
#define THE_OWNER 1
#define REVOKING 2

byte mem[NVARS];
byte bvar[BUFSZ];
byte bval[BUFSZ];
byte bn;

byte inside;
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

inline owner_store(v, x) {
  atomic { bn < BUFSZ -> bvar[bn] = v; bval[bn] = x; bn++ }
}

inline owner_load(v, out) {
  atomic {
    out = mem[v];
    for (j : 0 .. BUFSZ - 1) { if :: j < bn && bvar[j] == v -> out = bval[j] :: else -> skip fi }
  }
}

inline critical_section() {
  atomic { assert(inside == 0); inside++ };
  inside--
}

/* revoke_bias, for anyone but the owner. */
inline revoke() {
  do
  :: atomic { mem[OWNER] == NONE -> break }
  :: atomic { mem[OWNER] == THE_OWNER -> mem[OWNER] = REVOKING };
#ifdef MUTANT_CLEAR_BEFORE_WAIT
     mem[OWNER] = NONE;
#endif
#ifndef MUTANT_NO_MEMBARRIER
     bn == 0;  /* membarrier: the owner has passed a full barrier */
#endif
     mem[BIASED] == 0;
     mem[OWNER] = NONE;
     break
  :: atomic { mem[OWNER] == REVOKING -> skip }  /* another revoker: wait for NONE */
  od
}

proctype owner() {
  byte j, k, o;
  /* A run of operations through the flag, the last of which biases the lock (note_user). */
  atomic { bn == 0; mem[LOCKED] == 0 -> mem[LOCKED] = 1 };
  critical_section();
  owner_store(OWNER, THE_OWNER);
  owner_store(LOCKED, 0);
  for (k : 1 .. OPS) {
    owner_load(OWNER, o);
    if
    :: o == THE_OWNER ->
       owner_store(BIASED, 1);
       owner_load(OWNER, o);
       if
       :: o == THE_OWNER ->
          critical_section();
          owner_store(BIASED, 0);  /* unlock */
          goto next
       :: else -> owner_store(BIASED, 0)
       fi
    :: else -> skip
    fi;
    /* revoke_bias: for the owner, only waiting for NONE (it never sees itself there again) */
    mem[OWNER] == NONE;  /* it never stores owner: nothing of it in its buffer */
    atomic { bn == 0; mem[LOCKED] == 0 -> mem[LOCKED] = 1 };  /* exchange: drains the buffer */
    mem[OWNER] == NONE;  /* nobody else biases it in this model */
    critical_section();
    owner_store(LOCKED, 0);
next:
    skip
  };
  finished++
}

proctype other() {
  revoke();
  atomic { mem[LOCKED] == 0 -> mem[LOCKED] = 1 };
#ifndef MUTANT_NO_RECHECK
  revoke();  /* biased by the holder before us? */
#endif
  critical_section();
  mem[LOCKED] = 0;
  finished++
}

active proctype quiescence() {
end_check:
  timeout -> assert(finished == 3)
}

init {
  atomic {
    run owner();
    run other();
    run other()
  }
}
