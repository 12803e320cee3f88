// The one place that knows how a green thread's CPU context is switched (Boost.Context's
// fcontext, hand-written assembly per architecture) and that tells the sanitizers and valgrind
// about it. Everything arch- or tool-specific about switching stays in this file.
#pragma once

#include <boost/context/detail/fcontext.hpp>
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

#if WEFT_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if WEFT_TSAN
#include <sanitizer/tsan_interface.h>

#include <mutex>
#include <vector>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT_VALGRIND 1
#endif

namespace weft::detail {

#if WEFT_ASAN
inline constexpr bool sanitizer_keeps_dead_frames = true;
#else
inline constexpr bool sanitizer_keeps_dead_frames = false;
#endif

namespace bctx = boost::context::detail;
using fcontext = bctx::fcontext_t;
using transfer = bctx::transfer_t;
using entry_fn = void (*)(transfer);

}  // namespace weft::detail

#if defined(__x86_64__) && defined(__ELF__)
// jump_fcontext behind a thunk that keeps the CPU's return prediction in step (the one piece of
// assembly in weft: context_switch.cpp).
extern "C" boost::context::detail::transfer_t weft_jump_fcontext(
    boost::context::detail::fcontext_t to, void* data) noexcept;
#endif

namespace weft::detail {

inline transfer jump(fcontext to, void* data) noexcept {
#if defined(__x86_64__) && defined(__ELF__)
  return weft_jump_fcontext(to, data);
#else
  return bctx::jump_fcontext(to, data);
#endif
}

inline fcontext make_context(void* stack_top, std::size_t size, entry_fn fn) noexcept {
  return bctx::make_fcontext(stack_top, size, fn);
}

// What a side of a switch (a green thread or a worker's scheduler loop) keeps for the sanitizers.
struct switch_annotations {
#if WEFT_ASAN
  void* fake_stack = nullptr;
  const void* bottom = nullptr;  // lowest usable address of this side's stack
  std::size_t size = 0;
#endif
#if WEFT_TSAN
  void* tsan_fiber = nullptr;
  unsigned tsan_fiber_uses = 0;  // non-zero: a pooled fiber this green thread owns
#endif
#if WEFT_VALGRIND
  unsigned valgrind_id = 0;
#endif
};

#if WEFT_TSAN
// TSan's fiber creation clears ~800 KiB of shadow state, which would make a TSan build spend
// minutes creating 100K short green threads. Finished fibers are kept for the next green
// threads instead. A reused fiber carries its predecessor's happens-before edges, which can only
// hide a race between two green threads that ran one after the other on it, never invent one.
// A green thread leaves for good from inside its entry function, so each use leaves a few
// frames on the fiber's shadow call stack: a fiber is retired after `max_uses` to keep that
// stack far below TSan's limit.
class tsan_fiber_pool {
 public:
  struct fiber {
    void* handle = nullptr;
    unsigned uses = 0;
  };
  static fiber acquire() noexcept {
    {
      std::lock_guard lk(mutex());
      auto& f = spare();
      if (!f.empty()) {
        fiber out = f.back();
        f.pop_back();
        ++out.uses;
        return out;
      }
    }
    return {__tsan_create_fiber(0), 1};
  }
  static void release(fiber f) noexcept {
    if (f.uses < max_uses) {
      std::lock_guard lk(mutex());
      auto& spares = spare();
      if (spares.size() < 1024) {
        spares.push_back(f);
        return;
      }
    }
    __tsan_destroy_fiber(f.handle);
  }

 private:
  static constexpr unsigned max_uses = 200;
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<fiber>& spare() {
    static std::vector<fiber> v;
    return v;
  }
};
#endif

// Called once for each side: a green thread's stack [bottom, bottom+size) or a worker thread.
inline void annotate_create(switch_annotations& a, void* bottom, std::size_t size,
                            bool is_green) noexcept {
  (void)a, (void)bottom, (void)size, (void)is_green;
#if WEFT_ASAN
  a.bottom = bottom;
  a.size = size;
#endif
#if WEFT_TSAN
  if (is_green) {
    auto f = tsan_fiber_pool::acquire();
    a.tsan_fiber = f.handle;
    a.tsan_fiber_uses = f.uses;
  } else {
    a.tsan_fiber = __tsan_get_current_fiber();
  }
#endif
#if WEFT_VALGRIND
  if (is_green)
    a.valgrind_id =
        VALGRIND_STACK_REGISTER(static_cast<char*>(bottom), static_cast<char*>(bottom) + size);
#endif
}

// Called from another context once a green thread has finished for good.
inline void annotate_destroy(switch_annotations& a) noexcept {
  (void)a;
#if WEFT_TSAN
  if (a.tsan_fiber_uses) tsan_fiber_pool::release({a.tsan_fiber, a.tsan_fiber_uses});
  a.tsan_fiber = nullptr;
  a.tsan_fiber_uses = 0;
#endif
#if WEFT_VALGRIND
  if (a.valgrind_id) VALGRIND_STACK_DEREGISTER(a.valgrind_id);
  a.valgrind_id = 0;
#endif
}

// Switches from `from` to the context `to` described by `to_a`, passing `data`. `from_finished`:
// `from` will never run again (its fake stack can go).
inline transfer switch_context(fcontext to, void* data, switch_annotations& from,
                               switch_annotations& to_a, bool from_finished = false) noexcept {
  (void)from, (void)to_a, (void)from_finished;
#if WEFT_ASAN
  __sanitizer_start_switch_fiber(from_finished ? nullptr : &from.fake_stack, to_a.bottom,
                                 to_a.size);
#endif
#if WEFT_TSAN
  __tsan_switch_to_fiber(to_a.tsan_fiber, 0);
#endif
  transfer t = jump(to, data);
#if WEFT_ASAN
  __sanitizer_finish_switch_fiber(from.fake_stack, nullptr, nullptr);
#endif
  return t;
}

// First thing a green thread does on its own stack.
inline void annotate_entered(switch_annotations& self) noexcept {
  (void)self;
#if WEFT_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

}  // namespace weft::detail
