/* Private queues: entry, plain operations and revocation (runtime/queue_mode.cpp,
 * runtime/scheduler.hpp: sync_queue_mode, begin_plain, end_plain).
 *
 * The owner enters private mode at a schedule point: it closes the door (`stealable` false,
 * seq_cst), waits for the thieves inside (`stealers`) to leave, then sets `plain_ok`. Each plain
 * operation on its queue is bracketed by `in_op` with no fence: store in_op, load plain_ok. The
 * monitor revokes from outside: clears `plain_ok`, runs membarrier(2) (a full barrier on every
 * core of the process, at some point of each thread's execution), waits for `in_op` to fall, and
 * opens the door. A thief enters with the mirror of the owner's entry: stealers++, re-check
 * `stealable` (both seq_cst).
 *
 * Memory: x86-TSO for the owner, whose plain stores (in_op, plain_ok, its mode lock's release)
 * sit in a FIFO store buffer until flushed; its loads see its own buffer first. Its seq_cst
 * stores and RMWs drain the buffer. The monitor's and the thief's stores are drained at once
 * (each is a seq_cst RMW, or precedes the membarrier system call, which serialises).
 *
 * Safety: no thief's steal overlaps an owner's plain operation on the same queue.
 * Liveness (at quiescence): everyone finished (no one waits for in_op or stealers forever).
 *
 * MUTANT_NO_MEMBARRIER: revoke without the asymmetric barrier: the owner's in_op store is still
 * buffered when the monitor reads in_op false, and a thief steals during a plain operation.
 * MUTANT_NO_RECHECK: a thief does not re-check `stealable` after announcing itself: it enters
 * while the owner, having seen no stealers, starts plain operations.
 */

#define IN_OP 0
#define PLAIN_OK 1
#define MODE_LOCK 2
#define STEALABLE 3
#define STEALERS 4
#define NVARS 5
#define BUFSZ 4
#define OPS 2

byte mem[NVARS];
/* the owner's store buffer: oldest first */
byte bvar[BUFSZ];
byte bval[BUFSZ];
byte bn;

bit owner_plain;    /* the owner is inside a plain operation */
bit thief_inside;   /* a thief is taking from the queue */
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

/* A load by the owner: its own newest buffered store to `v`, else memory. */
inline owner_load(v, out) {
  atomic {
    out = mem[v];
    for (j : 0 .. BUFSZ - 1) { if :: j < bn && bvar[j] == v -> out = bval[j] :: else -> skip fi }
  }
}

/* A seq_cst store or RMW by the owner: drains the buffer first. */
inline owner_drain() { bn == 0 }

inline owner_lock_mode() {
  atomic { owner_drain(); mem[MODE_LOCK] == 0 -> mem[MODE_LOCK] = 1 }
}

inline plain_operation() {
  atomic { assert(!thief_inside); owner_plain = 1 };
  atomic { assert(!thief_inside); owner_plain = 0 }
}

proctype owner() {
  byte j, ok, k, want;
  /* change_queue_mode(to_private) */
  owner_lock_mode();
  atomic { owner_drain(); mem[STEALABLE] = 0 };
  mem[STEALERS] == 0;
  owner_store(PLAIN_OK, 1);
  owner_store(MODE_LOCK, 0);
  for (k : 1 .. OPS) {
    /* begin_plain */
    owner_store(IN_OP, 1);
    owner_load(PLAIN_OK, ok);
    if
    :: ok -> plain_operation(); owner_store(IN_OP, 0)  /* end_plain */
    :: else -> owner_store(IN_OP, 0)  /* shared mode: the atomic operations, safe with thieves */
    fi
  };
  /* a schedule point: sync_queue_mode, to either mode */
  if :: want = 0 :: want = 1 fi;
  owner_load(PLAIN_OK, ok);
  if
  :: want != ok && want == 0 ->
     owner_lock_mode();
     owner_store(PLAIN_OK, 0);
     atomic { owner_drain(); mem[STEALABLE] = 1 };
     owner_store(MODE_LOCK, 0)
  :: want != ok && want == 1 ->
     owner_lock_mode();
     atomic { owner_drain(); mem[STEALABLE] = 0 };
     mem[STEALERS] == 0;
     owner_store(PLAIN_OK, 1);
     owner_store(MODE_LOCK, 0);
     owner_store(IN_OP, 1);
     owner_load(PLAIN_OK, ok);
     if :: ok -> plain_operation() :: else -> skip fi;
     owner_store(IN_OP, 0)
  :: else -> skip
  fi;
  finished++
}

/* The monitor finds the owner stuck in one slice and revokes its private mode. */
proctype monitor() {
  atomic { mem[MODE_LOCK] == 0 -> mem[MODE_LOCK] = 1 };
  if
  :: mem[PLAIN_OK] ->
     mem[PLAIN_OK] = 0;
#ifndef MUTANT_NO_MEMBARRIER
     bn == 0;  /* membarrier: the owner has passed a full barrier */
#endif
     mem[IN_OP] == 0;
     mem[STEALABLE] = 1
  :: else -> skip
  fi;
  mem[MODE_LOCK] = 0;
  finished++
}

proctype thief() {
  byte tries;
  for (tries : 1 .. 2) {
    if
    :: mem[STEALABLE] ->
       mem[STEALERS]++;
#ifdef MUTANT_NO_RECHECK
       if :: true ->
#else
       if :: mem[STEALABLE] ->
#endif
          atomic { assert(!owner_plain); thief_inside = 1 };
          atomic { assert(!owner_plain); thief_inside = 0 }
       :: else -> skip
       fi;
       mem[STEALERS]--
    :: else -> skip
    fi
  };
  finished++
}

active proctype quiescence() {
end_check:
  timeout -> assert(finished == 3)
}

init {
  atomic {
    mem[STEALABLE] = 1;  /* starts shared */
    run owner();
    run monitor();
    run thief()
  }
}
