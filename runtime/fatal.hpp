// Ending the program over a green thread, with a message that names it.
#pragma once

#include <cstdint>
#include <exception>

namespace weft::detail {

// An exception escaped a detached green thread (Go's panic): print and abort.
[[noreturn]] void fatal_uncaught_exception(std::uint64_t id, const char* name,
                                           std::exception_ptr e) noexcept;
[[noreturn]] void fatal_message(std::uint64_t id, const char* name, const char* what) noexcept;
// "green thread 7" or "green thread 7 \"accept-loop\"", for messages.
struct thread_label {
  char text[64];
  thread_label(std::uint64_t id, const char* name) noexcept;
};

}  // namespace weft::detail
