// The pool of OS threads behind weft::blocking (Tokio's spawn_blocking pool): grows on demand up
// to a bound, and a thread idle for the keep-alive period exits.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include "weft/blocking.hpp"

namespace weft::detail {

class blocking_pool {
 public:
  blocking_pool(unsigned max_threads, std::chrono::nanoseconds keep_alive);
  ~blocking_pool();  // joins every thread; no job may be queued or running
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  // Queues `job`; a thread runs job->invoke, then marks it done and wakes its waiter.
  void submit(blocking_job* job);
  // Takes `job` back out of the queue if no thread has started it; false once one has.
  bool withdraw(blocking_job* job);

  unsigned threads() const;       // alive now
  unsigned idle_threads() const;  // alive and waiting for a job
  std::uint64_t queued() const;   // submitted, not yet taken by a thread

 private:
  using thread_list = std::list<std::thread>;
  void thread_main(thread_list::iterator self);
  void reap_exited();  // joins threads that left after their keep-alive (m_ held)

  const unsigned max_threads_;
  const std::chrono::nanoseconds keep_alive_;
  mutable std::mutex m_;
  std::condition_variable work_cv_;
  blocking_job* head_ = nullptr;
  blocking_job* tail_ = nullptr;
  std::uint64_t queued_ = 0;
  unsigned idle_ = 0;
  unsigned wakeups_ = 0;  // notified idle threads that have not yet taken a job
  bool stopping_ = false;
  thread_list threads_;
  std::vector<thread_list::iterator> exited_;
};

}  // namespace weft::detail
