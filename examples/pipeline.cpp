// pipeline: bounded parallel stages joined by channels. A source feeds numbers into a buffered
// channel (its capacity is the back-pressure), four workers square them, and the sink collects
// results with select, giving up if nothing comes for a second. The stages run in a
// weft::scope, so none outlives the pipeline and the first failure cancels the rest. A second
// pipeline shows cancellation: its source never ends, and the scope's deadline stops it.
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

namespace {

long sum_of_squares(int n, int workers) {
  weft::chan<int> numbers(16);
  weft::chan<long> squares(16);
  long sum = 0;
  weft::scope s;
  s.go([&] {  // source
    for (int i = 1; i <= n; ++i) numbers.send(i);
    numbers.close();  // the workers' range-for ends once it is drained
  });
  weft::wait_group working;
  working.add(workers);
  for (int w = 0; w < workers; ++w)
    s.go([&] {
      for (int v : numbers) squares.send(static_cast<long>(v) * v);
      working.done();
    });
  s.go([&] {  // closes the results once every worker is done
    working.wait();
    squares.close();
  });
  for (bool open = true; open;) {  // the sink, on this green thread
    weft::select(weft::on_recv(squares,
                               [&](std::optional<long> v) {
                                 if (v)
                                   sum += *v;
                                 else
                                   open = false;
                               }),
                 weft::on_timeout(1s, [] { throw std::runtime_error("pipeline stalled"); }));
  }
  s.wait();
  return sum;
}

// A source that never ends, stopped by its scope's deadline: every wait inside the scope
// (here the send into a full channel, and the sleep) throws weft::cancelled once it passes.
long produced_before_deadline() {
  weft::chan<int> out(4);
  long produced = 0;
  weft::scope s(50ms);
  s.go([&] {
    for (int i = 0;; ++i) {
      out.send(i);
      ++produced;
    }
  });
  s.go([&] {
    for (;;) {
      out.recv();
      weft::sleep_for(1ms);  // a slow consumer
    }
  });
  try {
    s.wait();
  } catch (const weft::cancelled&) {
    return produced;  // the deadline passed: both children were cancelled and joined
  }
  return -1;
}

}  // namespace

int main() {
  return weft::run([] {
    std::printf("sum of squares 1..1000 over 4 workers: %ld\n", sum_of_squares(1000, 4));
    const long produced = produced_before_deadline();
    std::printf("endless source stopped by a 50 ms deadline: %s\n", produced > 0 ? "yes" : "no");
    return produced > 0 ? 0 : 1;
  });
}
