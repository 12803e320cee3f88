// The side that owns a channel may destroy it as soon as its own operation returns, while the
// counterpart that holds only a reference is still on its way out of send, recv or select: the
// counterpart must not touch the handle or the channel once the exchange is visible. (The
// sanitizer builds catch a touch; CI once did, in a select test whose receiver owned the channels.)
#include <memory>

#include "test_support.hpp"

namespace {

class chan_lifetime : public weft_test::workers {};
WEFT_WORKER_COUNTS(chan_lifetime);

constexpr int rounds = 2000;

// Runs `rounds` exchanges; each makes a fresh heap channel (so a late touch is a use after free),
// hands `borrower` a reference on a new green thread, runs `owner` and destroys the channel.
template <class Owner, class Borrower>
void exchange_rounds(unsigned workers, std::size_t capacity, Owner owner, Borrower borrower) {
  weft::config cfg;
  cfg.workers = workers;
  int owner_got = 0;
  std::atomic<int> borrower_got{0};
  weft::run(
      [&] {
        weft::wait_group borrowers;
        for (int i = 0; i < rounds; ++i) {
          auto c = std::make_unique<weft::chan<int>>(capacity);
          borrowers.add(1);
          weft::go([&, ch = c.get()] {
            borrower_got += borrower(*ch);
            borrowers.done();
          });
          owner_got += owner(*c);
          c.reset();
        }
        borrowers.wait();
      },
      cfg);
  EXPECT_EQ(owner_got + borrower_got.load(), rounds);
}

int receive(weft::chan<int>& c) {
  return *c.recv();
}
int send(weft::chan<int>& c) {
  c.send(1);
  return 0;
}

TEST_P(chan_lifetime, receiver_destroys_the_channel_after_recv_returns) {
  for (std::size_t capacity : {0u, 1u}) exchange_rounds(GetParam(), capacity, receive, send);
}

// Only unbuffered: a buffered send returns before anyone has received.
TEST_P(chan_lifetime, sender_destroys_the_channel_after_send_returns) {
  exchange_rounds(GetParam(), 0, send, receive);
}

// The borrower selects over the channel and one that never becomes ready, so it parks on both;
// once woken it must leave the winner's channel alone when it unqueues from the other.
TEST_P(chan_lifetime, owner_destroys_the_channel_a_parked_select_won_on) {
  weft::chan<int> never(0);
  auto select_send = [&](weft::chan<int>& c) {
    return static_cast<int>(weft::select(weft::on_send(c, 1, [] {}),
                                         weft::on_recv(never, [](std::optional<int>) {})) == 0
                                ? 0
                                : 1000);
  };
  auto select_recv = [&](weft::chan<int>& c) {
    int got = 1000;
    weft::select(weft::on_recv(c, [&](std::optional<int> v) { got = *v; }),
                 weft::on_recv(never, [](std::optional<int>) {}));
    return got;
  };
  exchange_rounds(GetParam(), 0, receive, select_send);
  exchange_rounds(GetParam(), 0, send, select_recv);
}

}  // namespace
