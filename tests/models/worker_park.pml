/* Worker park / wake-up (runtime/find_work.cpp: wake_idle_worker, park_worker, leave_idle,
 * stop_spinning, steal; Go's wakep/stopm/resetspinning).
 *
 * Worker 0 is busy in one long green thread that readies ITEMS green threads onto its own queue,
 * calling wake_idle_worker after each; it never looks at its queue again. Workers 1 and 2 look
 * for work (stealing while spinning), and park when they find none: on the idle list, then a
 * re-check of the queues, then sleep until unparked.
 *
 * Memory: x86-TSO for worker 0, whose queue push is a plain store that sits in its store buffer
 * until flushed (any time, in order); a lock-prefixed RMW or a fence flushes it. The parking
 * side's publication (nidle++, a locked RMW) and its re-check need no model of their own
 * barrier on x86: the RMW is one.
 *
 * Safety: every green thread queued runs exactly once.
 * Liveness (at quiescence): nothing queued while every worker that could take it sleeps.
 *
 * MUTANT: no StoreLoad barrier between publishing the green thread and reading nidle: worker 0
 * reads nidle == 0 while its push is still buffered, a worker parks and re-checks an empty
 * queue, and the green thread waits forever behind a busy worker.
 */

#define ITEMS 2
#define IDLE_WORKERS 2
#define WORKERS 3

byte queue;      /* worker 0's local queue, in memory (what thieves see) */
byte buffered;   /* worker 0's pushes still in its store buffer */
byte ran;        /* green threads run */
byte produced;

/* The idle list and the counters (scheduler::idle_head_, nidle_, nspinning_). */
bit idle[IDLE_WORKERS];
bit wake_word[IDLE_WORKERS];
bit woken_spinning[IDLE_WORKERS];
byte nidle;
byte nspinning;
bit idle_lock;

inline lock() { atomic { idle_lock == 0 -> idle_lock = 1 } }
inline unlock() { idle_lock = 0 }

/* The store buffer drains in its own time. */
active proctype flush_buffer() {
end_flush:
  do
  :: atomic { buffered > 0 -> queue++; buffered-- }
  od
}

inline pop_idle_and_unpark(found) {
  lock();
  if
  :: idle[0] -> idle[0] = 0; nidle--; found = 1; woken_spinning[0] = 1; wake_word[0] = 1
  :: idle[1] -> idle[1] = 0; nidle--; found = 1; woken_spinning[1] = 1; wake_word[1] = 1
  :: else -> found = 0
  fi;
  unlock()
}

/* wake_idle_worker(): called by worker 0 after its push, and by a spinner that found work. */
inline wake_idle_worker(barrier) {
  if
  :: barrier -> (buffered == 0)   /* the fence waits for the buffer to drain */
  :: else -> skip
  fi;
  if
  :: nidle == 0 -> skip
  :: else ->
     if
     :: nspinning != 0 -> skip
     :: else ->
        atomic {  /* CAS 0 -> 1; a locked RMW also drains the buffer, so it waits for that */
          buffered == 0;
          if :: nspinning == 0 -> nspinning = 1; won = 1 :: else -> won = 0 fi
        }
        if
        :: won ->
           pop_idle_and_unpark(found);
           if :: !found -> nspinning-- :: else -> skip fi
        :: else -> skip
        fi
     fi
  fi
}

active proctype busy_worker() {
  bit won, found;
  do
  :: produced < ITEMS ->
     buffered++; produced++;   /* push_local: a plain store */
#ifdef MUTANT
     wake_idle_worker(0)
#else
     wake_idle_worker(1)
#endif
  :: else -> break
  od
  /* ...and runs its long green thread for ever after */
}

proctype idle_worker(byte me) {
  bit spinning, won, found, took;
  do
  :: /* find_runnable: try to steal if allowed to spin */
     if
     :: spinning || 2 * nspinning < WORKERS - nidle ->
        if :: !spinning -> spinning = 1; nspinning++ :: else -> skip fi;
        atomic { if :: queue > 0 -> queue--; took = 1 :: else -> took = 0 fi }
     :: else -> took = 0
     fi;
     if
     :: took ->
        if   /* stop_spinning: the last spinner keeps one spinning */
        :: spinning -> spinning = 0; nspinning--;
           if :: nspinning == 0 -> wake_idle_worker(0) :: else -> skip fi
        :: else -> skip
        fi;
        ran++
     :: else ->
        /* park_worker: publish idleness, then look again */
        lock();
        wake_word[me] = 0; idle[me] = 1; nidle++;
        unlock();
        if :: spinning -> spinning = 0; nspinning-- :: else -> skip fi;
        if
        :: queue > 0 ->   /* work_for: leave_idle */
           lock();
           if
           :: idle[me] -> idle[me] = 0; nidle--; unlock()
           :: else -> unlock(); wake_word[me] == 1; wake_word[me] = 0;
              if :: woken_spinning[me] -> woken_spinning[me] = 0; spinning = 1 :: else -> skip fi
           fi
        :: else ->
end_asleep:
           wake_word[me] == 1;
           wake_word[me] = 0;
           if :: woken_spinning[me] -> woken_spinning[me] = 0; spinning = 1 :: else -> skip fi
        fi
     fi
  od
}

active proctype quiescence() {
end_check:
  timeout -> assert(queue == 0 && buffered == 0 && ran == ITEMS)
}

init {
  atomic {
    run idle_worker(0);
    run idle_worker(1)
  }
}
