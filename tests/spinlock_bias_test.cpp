// The biased spinlock (include/weft/detail/spinlock.hpp): its owner enters without a locked
// instruction, and a thread that revokes the bias meanwhile never shares the lock with it.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "runtime/queue_mode.hpp"
#include "weft/detail/spinlock.hpp"

namespace {

using weft::detail::spinlock;

TEST(spinlock_bias, the_owner_holds_it_through_the_bias_until_another_thread_takes_it) {
  if (!weft::detail::private_queues_supported()) GTEST_SKIP() << "no membarrier(2) here";
  spinlock l;
  l.bias_to(spinlock::this_thread());
  l.lock();
  EXPECT_TRUE(l.held_through_bias());
  l.unlock();
  EXPECT_FALSE(l.held_through_bias());
  std::thread other([&] {
    l.lock();  // revokes
    EXPECT_FALSE(l.held_through_bias());
    l.unlock();
  });
  other.join();
  l.lock();
  EXPECT_FALSE(l.held_through_bias());  // revoked for good: the owner takes the lock itself
  l.unlock();
}

TEST(spinlock_bias, a_revoker_arriving_mid_stream_never_overlaps_the_owner) {
  if (!weft::detail::private_queues_supported()) GTEST_SKIP() << "no membarrier(2) here";
  constexpr long per_thread = 2'000'000;
  for (int round = 0; round < 20; ++round) {
    spinlock l;
    long counter = 0;  // plain: only the lock orders the increments
    std::atomic<int> inside{0};
    std::atomic<bool> owner_started{false};
    std::atomic<long> overlaps{0};
    auto work = [&](long n) {
      for (long i = 0; i < n; ++i) {
        l.lock();
        if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlaps.fetch_add(1);
        ++counter;
        inside.fetch_sub(1, std::memory_order_relaxed);
        l.unlock();
      }
    };
    std::thread owner([&] {
      l.bias_to(spinlock::this_thread());
      owner_started.store(true);
      work(per_thread);
    });
    std::thread revokers[2];
    for (auto& r : revokers) {
      r = std::thread([&] {
        while (!owner_started.load()) std::this_thread::yield();
        work(per_thread / 4);
      });
    }
    owner.join();
    for (auto& r : revokers) r.join();
    ASSERT_EQ(overlaps.load(), 0) << "round " << round;
    ASSERT_EQ(counter, per_thread + 2 * (per_thread / 4)) << "round " << round;
  }
}

// A worker biases a channel's lock to itself while holding it (note_user): a thread that took the
// flag just after must look at the bias again, and revoke it, before it goes in.
TEST(spinlock_bias, a_bias_set_by_the_holder_is_revoked_by_the_next_holder_before_it_enters) {
  if (!weft::detail::private_queues_supported()) GTEST_SKIP() << "no membarrier(2) here";
  constexpr long per_thread = 400'000;
  for (int round = 0; round < 20; ++round) {
    spinlock l;
    long counter = 0;
    std::atomic<int> inside{0};
    std::atomic<long> overlaps{0};
    std::atomic<int> ready{0};
    auto work = [&](long n, bool biases) {
      ready.fetch_add(1);
      while (ready.load() < 3) std::this_thread::yield();
      for (long i = 0; i < n; ++i) {
        l.lock();
        if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlaps.fetch_add(1);
        ++counter;
        // Every 50,000th operation of the biasing thread, if the lock is not biased: as a
        // worker does after a run of operations of its own.
        if (biases && i % 50'000 == 0 && !l.biased() && !l.held_through_bias()) l.bias_to_holder();
        inside.fetch_sub(1, std::memory_order_relaxed);
        l.unlock();
      }
    };
    std::thread a(work, per_thread, true), b(work, per_thread, false), c(work, per_thread, false);
    a.join();
    b.join();
    c.join();
    ASSERT_EQ(overlaps.load(), 0) << "round " << round;
    ASSERT_EQ(counter, 3 * per_thread) << "round " << round;
  }
}

}  // namespace
