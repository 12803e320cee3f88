// State that C++ keeps per OS thread, made per green thread: weft::local<T>, errno, and the
// exception being handled, all checked while green threads move between workers.
#include <cerrno>
#include <exception>
#include <stdexcept>
#include <string>

#include "test_support.hpp"

namespace {

class green_state : public weft_test::workers {};
WEFT_WORKER_COUNTS(green_state);

struct counted {
  static inline std::atomic<int> live{0};
  long value = -1;
  counted() { ++live; }
  ~counted() { --live; }
};
weft::local<counted> per_green_thread;

constexpr int green_threads = 200;

// errno through a call the compiler cannot see into: glibc declares __errno_location() const, so
// inline `errno` after a switch may reuse the address from before it (the old worker's errno).
__attribute__((noinline)) int read_errno() {
  return errno;
}
__attribute__((noinline)) void write_errno(int v) {
  errno = v;
}
constexpr int switches = 50;

// Runs `body(i)` in `green_threads` green threads at once (they yield, so they move between
// workers) and returns how many checks failed.
template <class Body>
int failures_across_green_threads(
    const weft::config& cfg, Body body, void (*in_main)() = [] {}) {
  std::atomic<int> wrong{0};
  weft::run(
      [&] {
        weft::wait_group wg;
        wg.add(green_threads);
        for (int i = 0; i < green_threads; ++i) {
          weft::go([&, i] {
            wrong += body(i);
            wg.done();
          });
        }
        wg.wait();
        in_main();
      },
      cfg);
  return wrong.load();
}

TEST_P(green_state, local_values_follow_their_green_thread) {
  const int wrong = failures_across_green_threads(
      cfg(),
      [](int i) {
        int bad = 0;
        per_green_thread->value = i;
        for (int k = 0; k < switches; ++k) {
          weft::yield();  // may resume on another worker
          bad += per_green_thread->value != i;
        }
        return bad;
      },
      [] { EXPECT_EQ(per_green_thread->value, -1); });  // main's own, untouched by the others
  EXPECT_EQ(wrong, 0);
  // Every green thread's value was destroyed with it, main's too.
  EXPECT_EQ(counted::live.load(), 0);
}

TEST_P(green_state, errno_follows_its_green_thread) {
  const int wrong = failures_across_green_threads(cfg(), [](int i) {
    int bad = 0;
    for (int k = 0; k < switches; ++k) {
      write_errno(1000 + i);
      weft::yield();
      bad += read_errno() != 1000 + i;
    }
    return bad;
  });
  EXPECT_EQ(wrong, 0);
}

TEST_P(green_state, a_switch_inside_a_catch_block_keeps_the_exception) {
  const int wrong = failures_across_green_threads(cfg(), [](int i) {
    int bad = 0;
    try {
      throw std::runtime_error(std::to_string(i));
    } catch (const std::runtime_error&) {
      for (int k = 0; k < switches; ++k) {
        weft::yield();
        try {
          std::rethrow_exception(std::current_exception());
        } catch (const std::runtime_error& e) {
          bad += e.what() != std::to_string(i);
        } catch (...) {
          ++bad;
        }
      }
      try {
        throw;  // the exception this handler caught, after all those switches
      } catch (const std::runtime_error& e) {
        bad += e.what() != std::to_string(i);
      }
    }
    bad += std::current_exception() || std::uncaught_exceptions() != 0;
    return bad;
  });
  EXPECT_EQ(wrong, 0);
}

}  // namespace
