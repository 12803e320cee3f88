// Names a thread weft started, as top -H, ps -L, perf and gdb show it ("weft-worker-1"). Never
// used on the thread that called run(): it keeps the name its program gave it.
#pragma once

#include <pthread.h>

#include <cstdio>
#include <thread>

namespace weft::detail {

// `base`, or `base-n` with n >= 0; the kernel keeps the first 15 characters. Called by the
// starting thread, so that the name is there by the time anyone can look.
inline void name_thread(std::thread& t, const char* base, int n = -1) noexcept {
  char name[32];
  if (n >= 0)
    std::snprintf(name, sizeof name, "%s-%d", base, n);
  else
    std::snprintf(name, sizeof name, "%s", base);
  name[15] = '\0';
  pthread_setname_np(t.native_handle(), name);
}

}  // namespace weft::detail
