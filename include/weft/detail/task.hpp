// Internal: the type-erased entry of a green thread. The callable is stored inline in the green
// thread's record (one allocation per spawn).
#pragma once

#include <cstddef>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

#include "weft/config.hpp"

namespace weft::detail {

struct green_thread;

struct task_vtable {
  void (*invoke)(void* storage);   // runs the callable; exceptions propagate to the runtime
  void (*destroy)(void* storage);  // destroys the callable (after invoke, or never run)
  // A weft::task (weft/task.hpp): no stack; invoke resumes its coroutine on the worker's own
  // stack and returns when it suspends or ends (then it cleared its resume point, the first word
  // of its storage).
  bool stackless = false;
};

// Allocates a record with `storage_size` bytes for the callable; returns the storage.
void* allocate_task(std::size_t storage_size, std::size_t storage_align, const task_vtable* vt,
                    const spawn_options& opts, green_thread** out);
void free_unsubmitted_task(green_thread* g) noexcept;  // the callable was never constructed
void submit_task(green_thread* g);                     // makes it runnable

// Asked by a callable destroyed without having run, to tell its owner why: the std::system_error
// of the stack that could not be mapped for it when it was to run first (the owner is then
// counted as told), or null when weft::run ended before it ran.
std::exception_ptr why_never_ran() noexcept;

template <class F>
struct task_of {
  static void invoke(void* s) { (*static_cast<F*>(s))(); }
  static void destroy(void* s) { static_cast<F*>(s)->~F(); }
  static constexpr task_vtable vtable{&invoke, &destroy};
};

// Starts a green thread running `f`. `before_submit(g, fn)` (noexcept) sees the record and the
// callable in place before the green thread can run: a scope or join state records it there.
template <class F, class Hook>
void start_task(const spawn_options& opts, F&& f, Hook&& before_submit) {
  using Fn = std::decay_t<F>;
  green_thread* g = nullptr;
  void* storage = allocate_task(sizeof(Fn), alignof(Fn), &task_of<Fn>::vtable, opts, &g);
  try {
    ::new (storage) Fn(std::forward<F>(f));
  } catch (...) {
    free_unsubmitted_task(g);
    throw;
  }
  before_submit(g, *static_cast<Fn*>(storage));
  submit_task(g);
}
template <class F>
void start_task(const spawn_options& opts, F&& f) {
  start_task(opts, std::forward<F>(f), [](green_thread*, auto&) noexcept {});
}

// Allocation of the runtime's own objects (jemalloc's mallocx unless built without it).
// `align` 0 means the allocator's default (16); a block allocated with an alignment is freed
// with the same one.
void* runtime_alloc(std::size_t size, std::size_t align = 0);
void runtime_free(void* p, std::size_t size, std::size_t align = 0) noexcept;
// A task's coroutine frame: from the calling worker's cache of frames freed there, else the
// runtime's allocator; freed into the calling worker's cache (runtime/record_cache.hpp).
void* task_frame_alloc(std::size_t size);
void task_frame_free(void* p, std::size_t size) noexcept;

}  // namespace weft::detail
