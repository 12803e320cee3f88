// Shared by the tests: every runtime test runs over 1, 2, 4 and 8 workers (8 > the cores here).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "weft/weft.hpp"

namespace weft_test {

// Sanitizer builds run the scale tests smaller: a TSan fiber costs ~800 KiB of shadow state.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif
#else
inline constexpr bool sanitized = false;
#endif

// ThreadSanitizer counts every fiber as a thread and dies past 8128 of them at once.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool thread_sanitized = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool thread_sanitized = true;
#else
inline constexpr bool thread_sanitized = false;
#endif
#else
inline constexpr bool thread_sanitized = false;
#endif

class workers : public ::testing::TestWithParam<unsigned> {
 protected:
  weft::config cfg() const {
    weft::config c;
    c.workers = GetParam();
    return c;
  }
};

inline std::string worker_name(const ::testing::TestParamInfo<unsigned>& info) {
  return "w" + std::to_string(info.param);
}

}  // namespace weft_test

#define WEFT_WORKER_COUNTS(suite) \
  INSTANTIATE_TEST_SUITE_P(, suite, ::testing::Values(1u, 2u, 4u, 8u), weft_test::worker_name)
