#include "thread_state.hpp"

#include <cxxabi.h>

#include <cerrno>

namespace weft::detail {

void bind_thread_state(worker& w) noexcept {
  w.errno_slot = &errno;
  w.eh_globals = reinterpret_cast<eh_globals_layout*>(abi::__cxa_get_globals());
}

}  // namespace weft::detail
