// The program tests/gdb_helper.cmake debugs: a named green thread parked a few frames deep,
// then a breakpoint trap while it waits.
#include <signal.h>

#include <weft/weft.hpp>

namespace {

__attribute__((noinline)) void deep_wait_for_gdb(weft::chan<int> ch) {
  ch.recv();
  asm volatile("");  // keep the frame
}

}  // namespace

int main() {
  weft::config cfg;
  cfg.workers = 2;
  cfg.detect_deadlock = false;
  return weft::run(
      [] {
        weft::chan<int> ch(0);
        weft::go(weft::named("waiter-under-gdb"), [ch] { deep_wait_for_gdb(ch); });
        weft::sleep_for(std::chrono::milliseconds(50));
        raise(SIGTRAP);  // gdb stops here
        ch.close();
      },
      cfg);
}
