#include "allocator.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#include "weft/detail/task.hpp"

#if WEFT_WITH_JEMALLOC
extern "C" {
void* weft_je_mallocx(std::size_t size, int flags);
void weft_je_sdallocx(void* p, std::size_t size, int flags);
// The private jemalloc's own settings (MALLOC_CONF in the environment still overrides them).
// Runtime objects come by the million (records, task frames): transparent huge pages for its
// extents turn a first touch per 4 KiB (12 us each on the project's VMs) into one per 2 MiB.
// 1M parked tasks started and parked: 1.56 s -> 0.16-0.65 s here.
extern const char* weft_je_malloc_conf;
const char* weft_je_malloc_conf = "thp:always";
}
#endif

namespace weft::detail {
namespace {

bool choose_jemalloc() noexcept {
#if WEFT_WITH_JEMALLOC
  const char* env = std::getenv("WEFT_ALLOCATOR");
  return !(env && std::strcmp(env, "libc") == 0);
#else
  return false;
#endif
}

// A function-local static: safe for allocations made during static initialisation.
bool jemalloc_chosen() noexcept {
  static const bool chosen = choose_jemalloc();
  return chosen;
}

}  // namespace

const char* runtime_allocator_name() noexcept {
  return jemalloc_chosen() ? "jemalloc" : "libc";
}

void* runtime_alloc(std::size_t size, std::size_t align) {
  void* p;
#if WEFT_WITH_JEMALLOC
  if (jemalloc_chosen()) {
    p = weft_je_mallocx(size, align ? __builtin_ctzll(align) : 0);  // MALLOCX_LG_ALIGN
    if (!p) throw std::bad_alloc();
    return p;
  }
#endif
  if (align) {
    p = std::aligned_alloc(align, (size + align - 1) & ~(align - 1));
  } else {
    p = std::malloc(size);
  }
  if (!p) throw std::bad_alloc();
  return p;
}

void runtime_free(void* p, std::size_t size, std::size_t align) noexcept {
#if WEFT_WITH_JEMALLOC
  if (jemalloc_chosen()) {
    weft_je_sdallocx(p, size, align ? __builtin_ctzll(align) : 0);
    return;
  }
#endif
  (void)size, (void)align;
  std::free(p);
}

}  // namespace weft::detail
