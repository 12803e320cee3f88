// The netpoller's interrupt: however many interrupts race with a poller consuming one, the next
// interrupt still breaks a blocking poll. A lost one leaves a worker asleep in epoll with work
// queued (it hung net_test once in CI: every later interrupt skipped its write).
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "netpoll/poller.hpp"

namespace {

using weft::detail::green_thread;
using weft::detail::netpoller;

// Polls until interrupted (or a signal breaks the system call: the test's way out of a hang).
void poll_until_interrupted(netpoller& np) {
  np.poll(-1, [](green_thread*) {});
}

TEST(poller, an_interrupt_breaks_a_blocking_poll_after_any_race_between_interrupts) {
  netpoller& np = netpoller::instance();
  // Interrupts land while the poller is consuming the previous one: one thread keeps
  // interrupting while another polls with a short timeout, over and over.
  std::atomic<bool> stop{false};
  std::thread interrupter([&] {
    while (!stop.load(std::memory_order_relaxed)) np.interrupt();
  });
  // Each poll waits at most 1 ms; once an interrupt is lost they all wait that long, so the
  // rounds are bounded by time as well.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (int round = 0; round < 200'000 && std::chrono::steady_clock::now() < until; ++round)
    np.poll(1'000'000, [](green_thread*) {});
  stop = true;
  interrupter.join();

  // Now one interrupt must break a poll with no timeout. Drained or pending, either way the
  // poll returns; if an earlier race left the interrupt lost, it never would.
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::promise<void> returned;
    std::future<void> done = returned.get_future();
    std::thread poller([&] {
      poll_until_interrupted(np);
      returned.set_value();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    np.interrupt();
    const bool woke = done.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
    if (!woke) {
      // Break the hang so the test can report it (SIGURG: ignored by default, interrupts).
      struct sigaction sa {};
      sa.sa_handler = [](int) {};
      sigaction(SIGURG, &sa, nullptr);
      while (done.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready)
        pthread_kill(poller.native_handle(), SIGURG);
    }
    poller.join();
    ASSERT_TRUE(woke) << "an interrupt was lost: a blocking poll slept through it";
  }
}

}  // namespace
