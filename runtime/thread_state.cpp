#include "thread_state.hpp"

#include <cxxabi.h>

#include <unistd.h>

#include <cerrno>

namespace weft::detail {

void bind_thread_state(worker& w) noexcept {
  w.os_tid = static_cast<int>(gettid());
  w.errno_slot = &errno;
  w.eh_globals = reinterpret_cast<eh_globals_layout*>(abi::__cxa_get_globals());
}

}  // namespace weft::detail
