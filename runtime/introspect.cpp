// What the runtime can say about itself: green-thread dumps (weft::dump, SIGQUIT), deadlock
// detection, and WEFT_TRACE=schedtrace:<ms> (Go's GODEBUG=schedtrace).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <ostream>
#include <string>

#include "fatal.hpp"
#include "futex.hpp"
#include "netpoll/poller.hpp"
#include "scheduler.hpp"
#include "thread_name.hpp"
#include "weft/stats.hpp"

namespace weft::detail {
namespace {

// A deadlock is declared only after nothing ran for this long with every worker asleep.
constexpr std::int64_t deadlock_grace_ns = 100'000'000;

struct sigaction g_previous_quit;

void write_fd(void* ctx, const char* text, std::size_t size) {
  const int fd = *static_cast<int*>(ctx);
  while (size) {
    const ssize_t n = ::write(fd, text, size);
    if (n <= 0) return;
    text += n;
    size -= static_cast<std::size_t>(n);
  }
}

void on_sigquit(int) {
  int fd = STDERR_FILENO;
  if (scheduler* s = active_scheduler()) {
    const char head[] = "weft: SIGQUIT: dump of green threads\n";
    write_fd(&fd, head, sizeof head - 1);
    s->write_dump({&write_fd, &fd}, true);
  }
  _exit(2);
}

// OS threads in this process. Another thread than the workers may still wake a green thread
// (send on a channel, unlock a mutex), so a deadlock is declared only when there is none.
long process_threads() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Threads:", 0) == 0) return std::atol(line.c_str() + 8);
  return -1;
}

}  // namespace

std::uint64_t scheduler::parked_count() const noexcept {
  std::uint64_t parks = 0, resumes = 0;
  for (auto& v : workers_) {
    resumes += v->resumes.load(std::memory_order_relaxed);
    parks += v->parks.load(std::memory_order_relaxed);
  }
  return parks > resumes ? parks - resumes : 0;
}

void scheduler::write_dump(const dump_sink& out, bool from_signal) const noexcept {
  char line[160];
  auto emit = [&](int n) {
    if (n > 0)
      out.write(out.ctx, line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
  };
  const std::int64_t now = now_ns();
  std::uint64_t listed = 0;
  // The caller itself, if it has never switched away (so is in no registry yet).
  if (const green_thread* self = current_green(); self && !self->home) {
    const thread_label label(self->id, self->name, is_task(self));
    emit(std::snprintf(line, sizeof line, "%s [running or runnable]\n", label.text));
    ++listed;
  }
  for (auto& v : workers_) {
    bool locked = false;
    if (from_signal) {
      // The signal may have interrupted the lock's holder on this very thread: never wait long.
      for (int i = 0; i < 100000 && !(locked = v->registry_lock.try_lock()); ++i) {
      }
      if (!locked) {
        emit(std::snprintf(line, sizeof line, "(worker %u: busy, its green threads skipped)\n",
                           v->index));
        continue;
      }
    } else {
      v->registry_lock.lock();
    }
    for (const green_thread* g = v->registry; g; g = g->reg_next) {
      const thread_label label(g->id, g->name, is_task(g));
      const wait_reason r = g->waiting_for.load(std::memory_order_relaxed);
      if (r == wait_reason::none) {
        emit(std::snprintf(line, sizeof line, "%s [running or runnable]\n", label.text));
      } else {
        const double secs =
            static_cast<double>(now - g->parked_since.load(std::memory_order_relaxed)) / 1e9;
        emit(std::snprintf(line, sizeof line, "%s [%s, %.1f s]\n", label.text, wait_reason_name(r),
                           secs < 0 ? 0.0 : secs));
      }
      ++listed;
    }
    v->registry_lock.unlock();
  }
  runtime_stats st;
  fill_stats(st);
  if (st.green_threads_live > listed)
    emit(std::snprintf(line, sizeof line, "(%llu more not yet started, or in their first slice)\n",
                       static_cast<unsigned long long>(st.green_threads_live - listed)));
}

std::int64_t scheduler::check_deadlock(std::int64_t deadline) noexcept {
  if (nidle_.load(std::memory_order_seq_cst) != static_cast<int>(worker_count()) || stopping())
    return deadline;
  if (netpoller* np = netpoller::started(); np && np->registered() != 0) return deadline;
  // Passing states, so look again later rather than never (the caller sleeps until then): an OS
  // thread inside make_runnable; a spare worker running a green thread while every configured
  // worker sleeps (it took the work of one that looked stuck), whose one long slice shows no
  // progress, yet is none of a deadlock.
  if (external_wakers_.load(std::memory_order_acquire) != 0 ||
      active_spares_.load(std::memory_order_seq_cst) != 0)
    return now_ns() + deadlock_grace_ns;
  // Progress since the last look: green threads run, green threads created from outside.
  std::uint64_t progress = external_created_.load(std::memory_order_relaxed) + 1;
  for (auto& v : workers_) progress += v->slices.load(std::memory_order_relaxed);
  const std::int64_t now = now_ns();
  if (suspect_snapshot_.load(std::memory_order_relaxed) == progress &&
      now - suspect_since_.load(std::memory_order_relaxed) >= deadlock_grace_ns &&
      process_threads() == static_cast<long>(worker_count()) + (tracer_.joinable() ? 1 : 0) +
                               (monitor_.joinable() ? 1 : 0) +
                               static_cast<long>(started_spares_.load()) +
                               blocking_.idle_threads() &&
      still_all_asleep())
    report_deadlock();
  if (suspect_snapshot_.exchange(progress, std::memory_order_relaxed) != progress)
    suspect_since_.store(now, std::memory_order_relaxed);
  return now + deadlock_grace_ns;  // look again then
}

// Read after the thread count: a pool thread that finished its call readied its caller (taking
// a worker off the idle list, queueing it) before it counted itself idle, and the pool's lock
// that idle_threads() takes makes both visible here. Without this, a caller woken while this
// check ran (this very worker, popped from the idle list) was reported as a deadlock.
bool scheduler::still_all_asleep() const noexcept {
  return nidle_.load(std::memory_order_seq_cst) == static_cast<int>(worker_count()) &&
         external_wakers_.load(std::memory_order_acquire) == 0 && global_.empty();
}

void scheduler::report_deadlock() const noexcept {
  int fd = STDERR_FILENO;
  const char head[] = "weft: all green threads are asleep - deadlock!\n\n";
  write_fd(&fd, head, sizeof head - 1);
  write_dump({&write_fd, &fd}, false);
  std::_Exit(2);
}

void scheduler::trace_loop(unsigned interval_ms) {
  const std::int64_t start = now_ns();
  std::int64_t next = start;
  for (;;) {
    next += static_cast<std::int64_t>(interval_ms) * 1'000'000;
    while (tracer_stop_.load(std::memory_order_acquire) == 0 && now_ns() < next)
      futex_wait(&tracer_stop_, 0, next);
    if (tracer_stop_.load(std::memory_order_acquire) != 0) return;
    runtime_stats st;
    fill_stats(st);
    std::string local;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      if (i) local += ' ';
      local += std::to_string(workers_[i]->local.size() +
                              (workers_[i]->runnext.load(std::memory_order_relaxed) ? 1 : 0));
    }
    std::fprintf(stderr,
                 "weft schedtrace: %lldms workers=%u idle=%u spinning=%u global=%llu "
                 "local=[%s] parked=%llu live=%llu steals=%llu forced_yields=%llu "
                 "stacks_in_use=%llu stacks_pooled=%llu\n",
                 static_cast<long long>((now_ns() - start) / 1'000'000), st.workers,
                 st.idle_workers, st.spinning_workers,
                 static_cast<unsigned long long>(st.runnable_global), local.c_str(),
                 static_cast<unsigned long long>(st.parked),
                 static_cast<unsigned long long>(st.green_threads_live),
                 static_cast<unsigned long long>(st.steals),
                 static_cast<unsigned long long>(st.forced_yields),
                 static_cast<unsigned long long>(st.stacks_mapped - st.stacks_pooled),
                 static_cast<unsigned long long>(st.stacks_pooled));
  }
}

void scheduler::start_introspection() {
  if (const char* trace = std::getenv("WEFT_TRACE")) {
    // WEFT_TRACE=schedtrace:<interval ms>
    if (std::strncmp(trace, "schedtrace:", 11) == 0) {
      const int ms = std::atoi(trace + 11);
      if (ms > 0) {
        tracer_stop_.store(0, std::memory_order_relaxed);
        tracer_ = std::thread([this, ms] { trace_loop(static_cast<unsigned>(ms)); });
        name_thread(tracer_, "weft-trace");
      }
    }
  }
  if (cfg_.dump_on_sigquit) {
    struct sigaction current;
    if (sigaction(SIGQUIT, nullptr, &current) == 0 && !(current.sa_flags & SA_SIGINFO) &&
        current.sa_handler == SIG_DFL) {
      struct sigaction sa;
      std::memset(&sa, 0, sizeof sa);
      sa.sa_handler = &on_sigquit;
      sigemptyset(&sa.sa_mask);
      sigaction(SIGQUIT, &sa, &g_previous_quit);
      sigquit_installed_ = true;
    }
  }
}

void scheduler::stop_introspection() noexcept {
  if (tracer_.joinable()) {
    tracer_stop_.store(1, std::memory_order_release);
    futex_wake(&tracer_stop_, 1);
    tracer_.join();
  }
  if (sigquit_installed_) {
    sigaction(SIGQUIT, &g_previous_quit, nullptr);
    sigquit_installed_ = false;
  }
}

}  // namespace weft::detail

namespace weft {

void dump(std::ostream& out) {
  detail::scheduler* s = detail::active_scheduler();
  if (!s) return;
  s->write_dump({[](void* ctx, const char* text, std::size_t size) {
                   static_cast<std::ostream*>(ctx)->write(text, static_cast<std::streamsize>(size));
                 },
                 &out},
                false);
}

}  // namespace weft
