#include "fatal.hpp"

#include <cxxabi.h>
#include <cstdio>
#include <cstdlib>
#include <typeinfo>

namespace weft::detail {

void fatal_uncaught_exception(std::uint64_t id, std::exception_ptr e) noexcept {
  const char* what = "(not derived from std::exception)";
  const std::type_info* type = abi::__cxa_current_exception_type();
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "weft: uncaught exception in green thread %llu: %s: %s\n",
                 static_cast<unsigned long long>(id), type ? type->name() : "?", ex.what());
    std::fflush(stderr);
    std::abort();
  } catch (...) {
  }
  std::fprintf(stderr, "weft: uncaught exception in green thread %llu: %s %s\n",
               static_cast<unsigned long long>(id), type ? type->name() : "?", what);
  std::fflush(stderr);
  std::abort();
}

void fatal_message(std::uint64_t id, const char* what) noexcept {
  std::fprintf(stderr, "weft: green thread %llu: %s\n", static_cast<unsigned long long>(id), what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace weft::detail
