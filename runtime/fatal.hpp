// Ending the program over a green thread, with a message that names it.
#pragma once

#include <cstdint>
#include <exception>

namespace weft::detail {

// An exception escaped a detached green thread (Go's panic): print and abort.
// `task`: it was a weft::task (named so in the message).
[[noreturn]] void fatal_uncaught_exception(std::uint64_t id, const char* name, std::exception_ptr e,
                                           bool task = false) noexcept;
[[noreturn]] void fatal_message(std::uint64_t id, const char* name, const char* what,
                                bool task = false) noexcept;
// "green thread 7", "green thread 7 \"accept-loop\"" or "task 9", for messages.
struct thread_label {
  char text[64];
  thread_label(std::uint64_t id, const char* name, bool task = false) noexcept;
};

}  // namespace weft::detail
