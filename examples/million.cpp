// million: spawn a million green threads, park them all on one channel, report what it cost,
// then wake them and join them. A parked green thread holds its stack (one touched page, about
// 4 KiB), not an OS thread.
//
//   million [count]      (default 1,000,000)
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

namespace {

long resident_kib() {  // this process's resident memory, from /proc/self/status
  std::ifstream status("/proc/self/status");
  for (std::string key; status >> key;) {
    if (key == "VmRSS:") {
      long kib = 0;
      status >> kib;
      return kib;
    }
    status.ignore(1 << 20, '\n');
  }
  return 0;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  const long count = argc > 1 ? std::stol(argv[1]) : 1'000'000;
  return weft::run([count] {
    const long before = resident_kib();
    weft::chan<int> release(0);  // nobody sends: every green thread parks on it until it closes
    weft::wait_group parked, done;
    parked.add(count);
    done.add(count);
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < count; ++i)
      weft::go([&] {
        parked.done();
        release.recv();  // parks until close()
        done.done();
      });
    parked.wait();
    const double spawn_s = seconds_since(start);
    const long during = resident_kib();
    std::printf("%ld green threads parked in %.2f s, %.2f KiB each (resident memory)\n", count,
                spawn_s, static_cast<double>(during - before) / static_cast<double>(count));
    const auto wake = std::chrono::steady_clock::now();
    release.close();
    done.wait();
    std::printf("all %ld woken and finished in %.2f s\n", count, seconds_since(wake));
  });
}
