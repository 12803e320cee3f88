// Spare workers (Go's handoff of a P): a worker stuck in one green thread (a CPU loop without
// budget points, a blocking system call) cannot run what is queued behind it. When every worker
// is busy and one has been stuck for the monitor's threshold, the monitor activates a spare: an
// extra worker thread that steals the stuck worker's queue (its run-next slot too) and the global
// queue. A spare retires as soon as no worker is stuck, handing anything it still holds to the
// global queue, so the program runs with its configured parallelism again. Spares keep no timers
// (timer_home) and never sleep in epoll; they sleep dormant on their wake word.
#include "futex.hpp"
#include "netpoll/poller.hpp"
#include "scheduler.hpp"
#include "thread_name.hpp"

namespace weft::detail {

bool scheduler::activate_spare() {
  for (unsigned i = nworkers_; i < workers_.size(); ++i) {
    worker& s = *workers_[i];
    bool expected = false;
    if (!s.spare_active.compare_exchange_strong(expected, true, std::memory_order_seq_cst))
      continue;
    active_spares_.fetch_add(1, std::memory_order_relaxed);
    if (!s.thread_started) {
      s.thread_started = true;
      started_spares_.fetch_add(1, std::memory_order_relaxed);
      s.thread = std::thread([this, &s] { worker_main(s); });
      name_thread(s.thread, "weft-spare", static_cast<int>(s.index));
    } else {
      s.wake_word.store(1, std::memory_order_seq_cst);
      futex_wake(&s.wake_word, 1);
    }
    return true;
  }
  return false;
}

// Gives back what the spare holds and sleeps until the monitor activates it again (or the run
// ends). Its queue goes to the global queue, where the configured workers find it.
void scheduler::retire_spare(worker& w) {
  green_chain held;
  if (green_thread* g = w.runnext.exchange(nullptr, std::memory_order_acq_rel)) held.append(g);
  while (green_thread* g = w.local.pop()) held.append(g);
  if (held.head) {
    global_.push_chain(held.head, held.tail, held.size);
    wake_idle_worker();
  } else if (netpoller* np = netpoller::started();
             np && np->registered() != 0 && !np->someone_blocks()) {
    // A green thread that ran here may have opened the first socket and parked on it while every
    // worker slept on its futex (they saw no socket to poll). Spares never wait in epoll, so
    // without this nobody would see that socket become ready: wake a worker to watch it.
    wake_idle_worker();
  }
  w.stacks.give_back_all();  // for the workers that stay, and for trim()
  w.wake_word.store(0, std::memory_order_relaxed);
  active_spares_.fetch_sub(1, std::memory_order_relaxed);
  w.spare_active.store(false, std::memory_order_seq_cst);
  while (w.wake_word.load(std::memory_order_seq_cst) == 0 && !stopping())
    futex_wait(&w.wake_word, 0, no_deadline);
  w.wake_word.store(0, std::memory_order_relaxed);
}

green_thread* scheduler::find_runnable_spare(worker& w) {
  for (;;) {
    if (stopping()) return nullptr;
    if (stuck_workers_.load(std::memory_order_relaxed) == 0) {
      retire_spare(w);
      continue;
    }
    ++w.tick;
    if (w.tick % 61 == 0 || epoch_passed(w)) {
      w.epoch_seen = sched_epoch_.load(std::memory_order_relaxed);
      if (!global_.empty()) {
        std::uint32_t n;
        if (green_thread* g = global_.pop_batch(1, n)) return g;
      }
      poll_network(w);
    }
    if (green_thread* g = take_local(w)) return g;
    if (!global_.empty()) {
      std::uint32_t n;
      if (green_thread* g = global_.pop_batch(run_queue::capacity / 2, n)) {
        for (green_thread* rest = g->next; rest;) {
          green_thread* nx = rest->next;
          push_local(w, rest);
          rest = nx;
        }
        return g;
      }
    }
    if (green_thread* g = steal(w)) return g;
    retire_spare(w);  // nothing to run: the stuck workers hold nothing back now
  }
}

}  // namespace weft::detail
