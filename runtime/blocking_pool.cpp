#include "blocking_pool.hpp"

#include <coroutine>
#include <system_error>

#include "weft/cancel.hpp"

#include "scheduler.hpp"
#include "thread_name.hpp"

namespace weft::detail {
namespace {

// The job is finished: mark it done and wake its caller. Nothing touches the job after the
// unlock but the caller's waiter, which stays valid until release_claimed has woken it.
void complete(blocking_job* job) noexcept {
  job->lock.lock();
  job->done = true;
  waiter* chain = job->waiters.claim_all();
  job->lock.unlock();
  release_claimed(chain, wake_reason::notified);
}

}  // namespace

blocking_pool::blocking_pool(unsigned max_threads, std::chrono::nanoseconds keep_alive)
    : max_threads_(max_threads == 0 ? 1 : max_threads), keep_alive_(keep_alive) {}

blocking_pool::~blocking_pool() {
  std::unique_lock lk(m_);
  stopping_ = true;
  work_cv_.notify_all();
  thread_list all;
  all.splice(all.end(), threads_);
  exited_.clear();
  lk.unlock();
  for (std::thread& t : all) t.join();
}

void blocking_pool::reap_exited() {
  for (auto it : exited_) {
    it->join();  // it has left thread_main: join returns at once
    threads_.erase(it);
  }
  exited_.clear();
}

void blocking_pool::submit(blocking_job* job) {
  std::unique_lock lk(m_);
  reap_exited();
  job->next = nullptr;
  if (tail_)
    tail_->next = job;
  else
    head_ = job;
  tail_ = job;
  ++queued_;
  if (idle_ > wakeups_) {
    ++wakeups_;
    work_cv_.notify_one();
    return;
  }
  if (threads_.size() >= max_threads_) return;  // queued: the next free thread takes it
  threads_.emplace_back();
  auto self = std::prev(threads_.end());
  try {
    *self = std::thread([this, self] { thread_main(self); });
    name_thread(*self, "weft-blocking");
  } catch (const std::system_error&) {
    threads_.erase(self);
    if (!threads_.empty()) return;  // a running thread will take it when it is free
    // No thread at all can run it: take it back and fail the caller.
    head_ = tail_ = nullptr;
    --queued_;
    throw;
  }
}

bool blocking_pool::withdraw(blocking_job* job) {
  std::lock_guard lk(m_);
  blocking_job* prev = nullptr;
  for (blocking_job* j = head_; j; prev = j, j = j->next) {
    if (j != job) continue;
    (prev ? prev->next : head_) = j->next;
    if (tail_ == j) tail_ = prev;
    --queued_;
    return true;
  }
  return false;
}

void blocking_pool::thread_main(thread_list::iterator self) {
  std::unique_lock lk(m_);
  for (;;) {
    if (head_) {
      blocking_job* job = head_;
      head_ = job->next;
      if (!head_) tail_ = nullptr;
      --queued_;
      lk.unlock();
      job->invoke(job);
      complete(job);
      lk.lock();
      continue;
    }
    if (stopping_) return;
    ++idle_;
    const bool woken = work_cv_.wait_for(lk, keep_alive_, [&] { return head_ || stopping_; });
    --idle_;
    if (wakeups_) --wakeups_;
    if (!woken) {
      exited_.push_back(self);  // joined by the next submit or the destructor
      return;
    }
  }
}

unsigned blocking_pool::threads() const {
  std::lock_guard lk(m_);
  return static_cast<unsigned>(threads_.size() - exited_.size());
}

unsigned blocking_pool::idle_threads() const {
  std::lock_guard lk(m_);
  return idle_;
}

std::uint64_t blocking_pool::queued() const {
  std::lock_guard lk(m_);
  return queued_;
}

void run_on_blocking_pool(blocking_job& job) {
  green_thread* g = current_green();
  blocking_pool& pool = g->sched->blocking();
  pool.submit(&job);
  waiter w;
  job.lock.lock();
  if (job.done) {
    job.lock.unlock();
    coop_point();
    return;
  }
  job.waiters.push_back(w);
  if (park(w, &job.lock, no_deadline, wait_reason::blocking) == wake_reason::notified) return;
  job.lock.lock();
  job.waiters.remove(w);
  job.lock.unlock();
  // Cancelled. A call no pool thread has started never runs; one that runs is not interrupted,
  // and `f` may use this stack: wait (uncancellably) for it, then drop its result.
  const bool shutdown = shutting_down(g);
  if (!shutdown && pool.withdraw(&job)) throw_cancelled();
  if (!shutdown) {
    cancel_shield shield;
    for (;;) {
      waiter again;
      job.lock.lock();
      if (job.done) {
        job.lock.unlock();
        break;
      }
      job.waiters.push_back(again);
      if (park(again, &job.lock, no_deadline, wait_reason::blocking) == wake_reason::notified)
        break;
      job.lock.lock();  // weft::run is ending meanwhile: wait as below
      job.waiters.remove(again);
      job.lock.unlock();
      break;
    }
  }
  // weft::run is ending: no worker runs, so poll until the pool is done with it.
  for (;;) {
    job.lock.lock();
    const bool done = job.done;
    job.lock.unlock();
    if (done) break;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  throw_cancelled();
}

namespace {

// A task's wait for `job`: park() on the job's waiters, cut at the switch.
class job_done_awaiter {
 public:
  explicit job_done_awaiter(blocking_job& job) noexcept : job_(job) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    job_.lock.lock();
    if (job_.done) {
      job_.lock.unlock();
      done_at_once_ = true;
      return false;
    }
    job_.waiters.push_back(w_);
    park_.lock = &job_.lock;
    return task_park_begin(park_, h.address(), w_, &park_.lock, 1, no_deadline,
                           wait_reason::blocking);
  }
  wake_reason await_resume() noexcept {
    if (done_at_once_) return wake_reason::notified;
    const wake_reason why = park_.parked ? task_park_end(park_, w_) : w_.reason();
    if (why != wake_reason::notified) {
      job_.lock.lock();
      job_.waiters.remove(w_);
      job_.lock.unlock();
    }
    return why;
  }

 private:
  blocking_job& job_;
  bool done_at_once_ = false;
  waiter w_;
  task_park park_;
};

}  // namespace

// run_on_blocking_pool's steps, awaited.
task<void> await_on_blocking_pool(blocking_job& job) {
  blocking_pool& pool = current_green()->sched->blocking();
  pool.submit(&job);
  if (co_await job_done_awaiter(job) == wake_reason::notified) co_return;
  const bool shutdown = shutting_down(current_green());
  if (!shutdown && pool.withdraw(&job)) throw_cancelled();
  if (!shutdown) {
    cancel_shield shield;
    co_await job_done_awaiter(job);  // notified, or cancelled because weft::run is ending
  }
  for (;;) {  // weft::run is ending: no worker runs, so poll until the pool is done with it
    job.lock.lock();
    const bool done = job.done;
    job.lock.unlock();
    if (done) break;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  throw_cancelled();  // the call's result is dropped, as run_on_blocking_pool drops it
}

bool on_green_thread() noexcept {
  return current_green() != nullptr;
}

}  // namespace weft::detail
