// The runtime's own allocations (green-thread records, join states, later channel buffers and
// poll descriptors) go to a private copy of jemalloc whose symbols are renamed at build time
// (weft_je_*), so a program linking weft keeps its own malloc. WEFT_ALLOCATOR=libc switches to
// malloc at start-up (for comparison); sanitizer builds always use malloc so the sanitizers see
// every object.
#pragma once

#include <cstddef>

namespace weft::detail {

const char* runtime_allocator_name() noexcept;

}  // namespace weft::detail
