#include "overflow_guard.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "green_thread.hpp"
#include "scheduler.hpp"
#include "stack_pool.hpp"

namespace weft::detail {
namespace {

struct sigaction g_previous_segv, g_previous_bus;
std::once_flag g_install_once;

// Async-signal-safe output: no stdio, no allocation.
void write_str(const char* s) noexcept {
  const ssize_t rc = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)rc;
}
void write_num(std::uint64_t v) noexcept {
  char buf[24];
  char* p = buf + sizeof buf;
  *--p = '\0';
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  write_str(p);
}

void chain(int sig, siginfo_t* info, void* ctx) noexcept {
  const struct sigaction& prev = sig == SIGBUS ? g_previous_bus : g_previous_segv;
  if (prev.sa_flags & SA_SIGINFO) {
    prev.sa_sigaction(sig, info, ctx);
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
  } else {
    // Default action: restore it and return; the faulting instruction faults again.
    signal(sig, SIG_DFL);
  }
}

void on_fault(int sig, siginfo_t* info, void* ctx) noexcept {
  const green_thread* g = current_green();
  if (g && g->stack_base) {
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    const auto base = reinterpret_cast<std::uintptr_t>(g->stack_base);
    // The guard page, or just below it (a large frame can skip over the guard).
    if (addr + 64 * 1024 >= base && addr < base + page_size()) {
      write_str("weft: stack overflow in green thread ");
      write_num(g->id);
      if (g->name && g->name[0]) {
        write_str(" \"");
        write_str(g->name);
        write_str("\"");
      }
      write_str(" (stack reserved: ");
      write_num((g->stack_mapped - page_size()) / 1024);
      write_str(" KiB; raise weft::config::stack_size or pass spawn_options{.stack_size})\n");
      signal(SIGABRT, SIG_DFL);
      abort();
    }
  }
  chain(sig, info, ctx);
}

void install_handler() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_previous_segv);
  sigaction(SIGBUS, &sa, &g_previous_bus);
}

}  // namespace

overflow_guard::overflow_guard() {
  std::call_once(g_install_once, install_handler);
  stack_t current;
  if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return;  // has one
  alt_size_ = 64 * 1024;
  alt_stack_ = mmap(nullptr, alt_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (alt_stack_ == MAP_FAILED) {
    alt_stack_ = nullptr;
    return;  // overflows then end in a plain SIGSEGV: no worse than without weft
  }
  stack_t ss;
  ss.ss_sp = alt_stack_;
  ss.ss_size = alt_size_;
  ss.ss_flags = 0;
  installed_ = sigaltstack(&ss, nullptr) == 0;
}

overflow_guard::~overflow_guard() {
  if (installed_) {
    stack_t ss;
    std::memset(&ss, 0, sizeof ss);
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
  }
  if (alt_stack_) munmap(alt_stack_, alt_size_);
}

}  // namespace weft::detail
