// Sums 1..1000 over 1000 green threads and checks the result: proves headers, library and
// its dependencies all reach a consumer project.
#include <weft/weft.hpp>

#include <atomic>
#include <cstdio>

int main() {
  return weft::run([] {
    std::atomic<long> sum{0};
    weft::wait_group wg;
    for (long i = 1; i <= 1000; ++i) {
      wg.add(1);
      weft::go([&, i] {
        sum += i;
        wg.done();
      });
    }
    wg.wait();
    auto h = weft::spawn([&] { return sum.load(); });
    long total = h.join();
    std::printf("consumer: sum=%ld\n", total);
    return total == 500500 ? 0 : 1;
  });
}
