#include "fatal.hpp"

#include <cxxabi.h>
#include <cstdio>
#include <cstdlib>
#include <typeinfo>

namespace weft::detail {

thread_label::thread_label(std::uint64_t id, const char* name, bool task) noexcept {
  const char* kind = task ? "task" : "green thread";
  if (name && *name)
    std::snprintf(text, sizeof text, "%s %llu \"%s\"", kind, static_cast<unsigned long long>(id),
                  name);
  else
    std::snprintf(text, sizeof text, "%s %llu", kind, static_cast<unsigned long long>(id));
}

void fatal_uncaught_exception(std::uint64_t id, const char* name, std::exception_ptr e,
                              bool task) noexcept {
  const thread_label label(id, name, task);
  const char* what = "(not derived from std::exception)";
  const std::type_info* type = abi::__cxa_current_exception_type();
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "weft: uncaught exception in %s: %s: %s\n", label.text,
                 type ? type->name() : "?", ex.what());
    std::fflush(stderr);
    std::abort();
  } catch (...) {
  }
  std::fprintf(stderr, "weft: uncaught exception in %s: %s %s\n", label.text,
               type ? type->name() : "?", what);
  std::fflush(stderr);
  std::abort();
}

void fatal_message(std::uint64_t id, const char* name, const char* what, bool task) noexcept {
  std::fprintf(stderr, "weft: %s: %s\n", thread_label(id, name, task).text, what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace weft::detail
