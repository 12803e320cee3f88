/* A socket read through a worker's io_uring ring against everything that may end it early
 * (netpoll/ring_wait.cpp: ring_read, settle, outcome; netpoll/ring.cpp: worker_ring::complete,
 * reap, post_cancel, process_mailbox; runtime/park.cpp: park; poller.cpp: kick, close).
 *
 * The green thread queues a recv whose buffer is on its stack, links its waiter as the
 * descriptor's reader (under the descriptor's lock), and parks; the lock is released only once
 * it is off its worker. The kernel completes the recv with the peer's data, or with ECANCELED
 * once a cancel reached it. The ring's owner reaps the completion: under the lock it records
 * the result, sets `done`, and wakes whoever waits, the reader's waiter if still linked and
 * unclaimed, else the drain waiter. A timer (no lock) or a kick/close (under the lock, unlinking
 * it) may claim the reader's waiter first: the green thread then, under the lock, sees the
 * request not done, unlinks itself, asks for a cancel (on its own ring, or posted to the
 * owner's mailbox: the lock is dropped to post and taken again), and unless the completion came
 * meanwhile parks on a drain waiter, which only the completion wakes. Then it returns.
 *
 * Safety: the green thread returns only after the completion (the kernel is done with the
 * buffer); nobody touches the op once it has returned; each park is resumed once, never before
 * the green thread is off its worker; data the kernel delivered is what the read returns, even
 * when the wait was ended early (never dropped).
 * Liveness (at quiescence): the green thread has returned and nothing is in flight.
 *
 * MUTANT_RETURN_EARLY: woken early, the read returns without waiting for the completion (as
 * epoll's wait may): the kernel then writes into a returned call's buffer, and the owner's
 * completion touches a dead op.
 * MUTANT_NO_RECHECK: after posting the cancel, the green thread parks on the drain waiter
 * without looking at `done` again: a completion reaped while it posted is never seen, and it
 * sleeps forever.
 */

#define WAITING 0
#define NOTIFIED 1
#define TIMED_OUT 2

#define NONE 0
#define DATA 1
#define CANCELED 2

bit lock;           /* poll_descriptor::lock */
bit linked;         /* side.parked == &op.w */
byte wstate;        /* op.w.state */
bit saved;          /* the green thread is off its worker (parked) */
bit runnable;
bit dlinked;        /* op.drain is set */
byte dstate;        /* the drain waiter's state */
bit dsaved;
bit drunnable;
bit done;           /* op.done */
byte result;        /* op.result: DATA or CANCELED */
byte returned = NONE;
bit gone;           /* the read returned: its op and buffer are dead */

bit in_flight;      /* the recv is in the kernel */
bit cancel_asked;   /* a cancel for it reached the owner's ring */
bit cqe;            /* its completion waits in the completion queue */
bit peer_sent;      /* the peer's data has arrived on the socket */

inline take(l) { atomic { l == 0 -> l = 1 } }
inline drop(l) { l = 0 }

proctype reader() {
  bit early;
  take(lock);
  in_flight = 1;  /* queue_read: the kernel sees it on the owner's next pass */
  linked = 1;
  atomic { saved = 1; drop(lock) }  /* park: the lock goes once off the worker */
  runnable;
  atomic { runnable = 0; saved = 0 }
  take(lock);
  if
  :: !done -> early = 1; linked = 0;
#ifdef MUTANT_RETURN_EARLY
     drop(lock); goto out;
#endif
     drop(lock);
     cancel_asked = 1;  /* posted to the owner's mailbox (or queued on its own ring) */
     take(lock);
#ifdef MUTANT_NO_RECHECK
     dlinked = 1; atomic { dsaved = 1; drop(lock) };
     drunnable; atomic { drunnable = 0; dsaved = 0 }
#else
     if
     :: !done -> dlinked = 1; atomic { dsaved = 1; drop(lock) };
        drunnable; atomic { drunnable = 0; dsaved = 0 }
     :: else -> drop(lock)
     fi
#endif
  :: else -> early = 0; drop(lock)
  fi;
#ifdef MUTANT_RETURN_EARLY
out:
#endif
  /* outcome(): the data if any came, else why the wait ended */
  atomic {
    assert(done);  /* the kernel is done with the buffer */
    returned = result;
    gone = 1
  }
}

/* The kernel: the recv completes with the peer's data, or with ECANCELED once cancelled. */
proctype kernel() {
end_idle:
  do
  :: atomic { in_flight && peer_sent -> in_flight = 0; result = DATA; cqe = 1 }
  :: atomic { in_flight && cancel_asked -> in_flight = 0; result = CANCELED; cqe = 1 }
  od
}

/* The ring's owner reaping the completion (worker_ring::complete). */
proctype owner() {
  cqe;
  take(lock);
  assert(!gone);
  done = 1;
  if
  :: atomic { linked && wstate == WAITING -> wstate = NOTIFIED; linked = 0 };
     atomic { assert(saved && !runnable); runnable = 1 }
  :: else ->
     if
     :: atomic { dlinked && dstate == WAITING -> dstate = NOTIFIED };
        atomic { assert(dsaved && !drunnable); drunnable = 1 }
     :: else -> skip
     fi
  fi;
  drop(lock);  /* from here the op may be gone */
  cqe = 0
}

/* A deadline's timer: claims the waiter without the descriptor's lock. */
proctype timer() {
  bit won;
  saved || gone;
  atomic { if :: !gone && wstate == WAITING -> wstate = TIMED_OUT; won = 1 :: else -> won = 0 fi };
  if :: won -> atomic { assert(saved && !runnable); runnable = 1 } :: else -> skip fi
}

/* close() or a moved deadline (netpoller::kick): claims the linked waiter under the lock. */
proctype kicker() {
  bit won;
  saved || gone;
  take(lock);
  if
  :: atomic { linked && wstate == WAITING -> wstate = NOTIFIED; linked = 0; won = 1 }
  :: else -> won = 0
  fi;
  drop(lock);
  if :: won -> atomic { assert(saved && !runnable); runnable = 1 } :: else -> skip fi
}

proctype peer() {
  peer_sent = 1
}

init {
  atomic {
    run reader();
    run kernel();
    run owner();
    run timer();
    run kicker();
    run peer()
  }
}

active proctype quiescence() {
end_check:
  timeout ->
    assert(gone && !in_flight && !cqe);
    /* the data the kernel delivered is what the read returned */
    assert(returned == result)
}
