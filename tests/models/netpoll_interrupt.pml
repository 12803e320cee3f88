/* The netpoller's interrupt (netpoll/poller.cpp: interrupt(), the interrupt_tag branch of
 * poll_impl) and the worker that sleeps in epoll (runtime/find_work.cpp: park_in_poller, unpark).
 *
 * A worker about to sleep in epoll sets `polling`, looks at its wake word once more, and blocks
 * until the eventfd is readable. A waker sets the wake word, then interrupts if the worker polls.
 * interrupt() writes the eventfd only when no interrupt is pending; the poller that sees the
 * eventfd readable drains it and clears the pending flag, in that order.
 *
 * Safety: the worker never consumes a wake-up twice, the eventfd count never goes negative.
 * Liveness (at quiescence): no state where nothing can move while a wake-up is unconsumed, i.e.
 * no worker asleep in epoll with its wake word set.
 *
 * MUTANT: clear the pending flag before draining (the order that hung net_test in CI): an
 * interrupt between the two is drained with the other and leaves the flag set over an empty
 * eventfd; every later interrupt() skips its write and the poller sleeps through it.
 */

#define WAKES 2 /* wake-ups per waker */
#define WAKERS 2

bit pending;     /* interrupt_pending_ */
byte efd;        /* the eventfd's counter (readable while > 0) */
bit polling;     /* worker::polling */
bit wake_word;   /* worker::wake_word */
byte wakes_made; /* by all wakers */
byte wakers_done;
byte consumed;   /* wake-ups the worker saw */

inline interrupt() {
  atomic { if :: pending -> skip :: else -> pending = 1; efd++ fi }
}

proctype waker() {
  byte i;
  for (i : 1 .. WAKES) {
    /* unpark: the wake word first, then the poller if the worker sleeps there */
    atomic { wake_word = 1; wakes_made++ }
    if :: polling -> interrupt() :: else -> skip fi
  }
  wakers_done++
}

/* Also a worker that polls without blocking: it may see the eventfd readable but leaves it. */
proctype worker() {
  bit saw_interrupt;
  do
  :: wakers_done == WAKERS && wake_word == 0 -> break
  :: else ->
     polling = 1;
     if
     :: wake_word == 0 ->
        /* epoll_pwait2 with no timeout: returns once the eventfd is readable */
end_asleep:
        efd > 0;
        saw_interrupt = 1
     :: else -> saw_interrupt = 0
     fi;
     if
     :: saw_interrupt ->
#ifdef MUTANT
        pending = 0;
        efd = 0
#else
        efd = 0;   /* read(2) takes the whole count */
        pending = 0
#endif
     :: else -> skip
     fi;
     polling = 0;
     if
     :: wake_word -> wake_word = 0; consumed++
     :: else -> skip
     fi
  od
}

/* Runs only when nothing else can: a wake-up still unconsumed then is one slept through. */
active proctype quiescence() {
end_check:
  timeout -> assert(wake_word == 0)
}

init {
  atomic {
    run worker();
    run waker();
    run waker()
  }
}
