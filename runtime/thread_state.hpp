// What C and C++ keep per OS thread but a green thread must carry with it when it moves between
// workers: errno, and the C++ exception globals (the exceptions being handled, for `throw;`
// and std::current_exception, and std::uncaught_exceptions). Saved when a green thread switches
// away, restored when it resumes, so a switch in a catch block is safe, and so is one between a
// syscall and an errno read made through a fresh call (see docs/debugging.md: the compiler may keep
// errno's address across a call, since glibc declares __errno_location() const).
#pragma once

#include "green_thread.hpp"
#include "scheduler.hpp"

namespace weft::detail {

// The Itanium C++ ABI's __cxa_eh_globals (libstdc++ and libc++ alike).
struct eh_globals_layout {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

// Run once on each worker thread: the addresses of its errno and exception globals, so that a
// switch reaches them with plain loads instead of two TLS lookups through the PLT.
void bind_thread_state(worker& w) noexcept;

// Between green threads a worker's exception globals are empty: each green thread takes its
// own out on the way out and puts them back on the way in (on whichever worker that is).
inline void save_thread_state(green_thread* g) noexcept {
  const worker& w = *g->running_on;
  g->saved_errno = *w.errno_slot;
  eh_globals_layout* eh = w.eh_globals;
  g->eh_caught = eh->caught_exceptions;
  g->eh_uncaught = eh->uncaught_exceptions;
  if (g->eh_caught || g->eh_uncaught) {
    eh->caught_exceptions = nullptr;
    eh->uncaught_exceptions = 0;
  }
}

inline void restore_thread_state(green_thread* g) noexcept {
  const worker& w = *g->running_on;  // set by whoever resumed it: the worker it runs on now
  *w.errno_slot = g->saved_errno;
  if (g->eh_caught || g->eh_uncaught) {
    w.eh_globals->caught_exceptions = g->eh_caught;
    w.eh_globals->uncaught_exceptions = g->eh_uncaught;
  }
}

}  // namespace weft::detail
