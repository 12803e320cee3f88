/* "A short read means drained" against a late edge (netpoll/pollable.cpp: perform_raw and
 * stream::read's wait_first; netpoll/poller.cpp: wait, notify; the kernel's edge-triggered
 * epoll).
 *
 * The kernel: data arrives in chunks; each arrival puts the socket on epoll's ready list (one
 * entry however many arrive before it is harvested). A worker harvests the entry and notifies
 * the poll descriptor: it wakes the parked reader, or, if none, sets `ready` so the next wait
 * returns at once. The reader reads up to BUF chunks at a time; after a short read it skips the
 * read that would only say EAGAIN and waits first.
 *
 * Safety: every chunk is read once, in order of arrival (a count suffices here).
 * Liveness (at quiescence): the reader has every chunk; it never sleeps with data queued.
 *
 * MUTANT_FULL_READ_DRAINED: a full read also counts as drained: chunks left in the socket after
 * it have no edge to come, and the reader sleeps with data queued.
 * MUTANT_NO_READY_FLAG: an edge with nobody parked is dropped instead of kept in `ready`: the
 * edge of data that arrived after a short read is lost the same way.
 */

#define TOTAL 4
#define BUF 2

byte avail;      /* bytes in the socket's receive queue (in chunks) */
bit on_rdlist;   /* the socket's entry on epoll's ready list */
byte sent, got;

bit pd_lock;
bit parked;      /* poll_descriptor::side::parked */
bit ready;       /* poll_descriptor::side::ready */
bit runnable;

inline lock() { atomic { pd_lock == 0 -> pd_lock = 1 } }
inline unlock() { pd_lock = 0 }

proctype peer() {
  do
  :: sent < TOTAL -> atomic { avail++; sent++; on_rdlist = 1 }
  :: else -> break
  od
}

/* Any worker's epoll_wait: harvests the entry, then notify(). */
proctype poller() {
end_poll:
  do
  :: atomic { on_rdlist -> on_rdlist = 0 };
     lock();
     if
     :: parked -> parked = 0; runnable = 1  /* claimed: the reader is readied */
     :: else ->
#ifdef MUTANT_NO_READY_FLAG
        skip
#else
        ready = 1
#endif
     fi;
     unlock()
  od
}

proctype reader() {
  bit drained, wait_first;
  byte n;
  do
  :: got == TOTAL -> break
  :: else ->
     wait_first = drained;
     drained = 0;
     do
     :: /* the read(2), or the EAGAIN that wait_first assumes */
        if
        :: wait_first -> n = 0; wait_first = 0
        :: else -> atomic { if :: avail >= BUF -> n = BUF :: else -> n = avail fi; avail = avail - n }
        fi;
        if
        :: n > 0 -> break
        :: else ->  /* EAGAIN: netpoller::wait */
           lock();
           if
           :: ready -> ready = 0; unlock()
           :: else ->
              parked = 1;
              unlock();  /* after the switch: only then may the poller wake it */
end_parked:
              runnable;
              runnable = 0
           fi
        fi
     od;
     got = got + n;
#ifdef MUTANT_FULL_READ_DRAINED
     drained = 1
#else
     drained = (n < BUF)
#endif
  od
}

active proctype quiescence() {
end_check:
  timeout -> assert(got == TOTAL && avail == 0)
}

init {
  atomic {
    run peer();
    run poller();
    run reader()
  }
}
