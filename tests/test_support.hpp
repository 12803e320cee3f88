// Shared by the tests: every runtime test runs over 1, 2, 4 and 8 workers (8 > the cores here).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "weft/weft.hpp"

namespace weft_test {

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
