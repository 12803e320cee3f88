// Shared by the tests: every runtime test runs over 1, 2, 4 and 8 workers (8 > the cores here).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

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

// The chaos schedule (WEFT_CHAOS=ON) places readied green threads at random: orders that only
// the plain schedule gives (strict alternation on one worker) are not checked under it.
#if WEFT_CHAOS
inline constexpr bool chaos = true;
#else
inline constexpr bool chaos = false;
#endif

// From a green thread: waits until at least `n` green threads (other than the caller) are
// parked. A test whose meaning needs one parked first must not trust a sleep: a sanitizer build
// beside another test on two cores can take longer than any sleep to get there.
inline void wait_until_parked(std::uint64_t n) {
  while (weft::stats().parked < n) weft::sleep_for(std::chrono::milliseconds(1));
}

class workers : public ::testing::TestWithParam<unsigned> {
 protected:
  weft::config cfg() const {
    weft::config c;
    c.workers = GetParam();
    return c;
  }
};

// Green threads that each hold a worker inside read(2) on a pipe until released: every worker
// then looks stuck to the monitor, which starts a spare worker for what is queued behind them.
class worker_blockers {
 public:
  explicit worker_blockers(int n) : fds_(2 * n) {
    for (int i = 0; i < n; ++i) EXPECT_EQ(::pipe(&fds_[2 * i]), 0);
  }
  ~worker_blockers() {
    for (int fd : fds_) ::close(fd);
  }
  worker_blockers(const worker_blockers&) = delete;
  worker_blockers& operator=(const worker_blockers&) = delete;

  int count() const { return static_cast<int>(fds_.size() / 2); }
  // Spawns the blockers; each calls wg.done() once released.
  void spawn(weft::wait_group& wg) {
    for (int i = 0; i < count(); ++i)
      weft::go([this, &wg, i] {
        ++entering_;  // just before read(2): nothing in between parks or yields
        char c = 0;
        if (::read(fds_[2 * i], &c, 1) == 1 && c == 'x') ++released_;
        wg.done();
      });
  }
  // Every blocker is inside (or entering) read(2): each holds its worker.
  bool all_blocking() const { return entering_.load() == count(); }
  void release() {
    for (int i = 0; i < count(); ++i) EXPECT_EQ(::write(fds_[2 * i + 1], "x", 1), 1);
  }
  int released() const { return released_.load(); }

 private:
  std::vector<int> fds_;
  std::atomic<int> entering_{0}, released_{0};
};

// Whether this kernel lets the process make an io_uring ring at all (a sandbox may not).
inline bool rings_available() {
  static const bool ok = [] {
    bool yes = false;
    weft::config c;
    c.workers = 1;
    c.poller = weft::poller_backend::io_uring;
    weft::run([&] { yes = std::string_view(weft::stats().poller) == "io_uring"; }, c);
    return yes;
  }();
  return ok;
}

// The io_uring backend's suites: each worker count, with rings.
class ring_workers : public workers {
 protected:
  weft::config ring_cfg() const {
    weft::config c = cfg();
    c.poller = weft::poller_backend::io_uring;
    return c;
  }
};

inline std::string worker_name(const ::testing::TestParamInfo<unsigned>& info) {
  return "w" + std::to_string(info.param);
}

}  // namespace weft_test

#define WEFT_WORKER_COUNTS(suite) \
  INSTANTIATE_TEST_SUITE_P(, suite, ::testing::Values(1u, 2u, 4u, 8u), weft_test::worker_name)
