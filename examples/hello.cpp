// hello: the quick-start. 100,000 green threads add up 1..100,000 while the main green thread
// waits for them on a wait_group, then one more returns a value through spawn/join.
#include <weft/weft.hpp>

#include <atomic>
#include <cstdio>

int main() {
  return weft::run([] {
    weft::wait_group wg;
    std::atomic<long> sum{0};
    for (long i = 1; i <= 100'000; ++i) {  // 100K green threads: cheap
      wg.add(1);
      weft::go([&, i] {
        sum += i;
        wg.done();
      });
    }
    wg.wait();                                     // parks this green thread, not the worker
    auto answer = weft::spawn([] { return 42; });  // join_handle<int>
    std::printf("sum=%ld answer=%d\n", sum.load(), answer.join());
  });
}
