// Ending the program over a green thread, with a message that names it.
#pragma once

#include <cstdint>
#include <exception>

namespace weft::detail {

// An exception escaped a detached green thread (Go's panic): print and abort.
[[noreturn]] void fatal_uncaught_exception(std::uint64_t id, std::exception_ptr e) noexcept;
[[noreturn]] void fatal_message(std::uint64_t id, const char* what) noexcept;

}  // namespace weft::detail
