// Command-line flags shared by the benchmark servers:
//   --port N --workers N [--coop-budget N] [--adversary] [--parked N]
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bench {

struct server_args {
  unsigned port = 8080;
  unsigned workers = 0;     // 0: WEFT_WORKERS, else the hardware threads
  long coop_budget = -1;    // -1: the runtime's default; 0 turns the budget off
  bool adversary = false;   // carry bench/adversary.hpp's hostile load in-process
  long parked = 1'000'000;  // the adversary's parked green threads
};

inline server_args parse_server_args(int argc, char** argv) {
  server_args a;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (has_value && std::strcmp(argv[i], "--port") == 0) {
      a.port = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (has_value && std::strcmp(argv[i], "--workers") == 0) {
      a.workers = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (has_value && std::strcmp(argv[i], "--coop-budget") == 0) {
      a.coop_budget = std::atol(argv[++i]);
    } else if (has_value && std::strcmp(argv[i], "--parked") == 0) {
      a.parked = std::atol(argv[++i]);
    } else if (std::strcmp(argv[i], "--adversary") == 0) {
      a.adversary = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--port N] [--workers N] [--coop-budget N] [--adversary] "
                   "[--parked N]\n",
                   argv[0]);
      std::exit(2);
    }
  }
  return a;
}

}  // namespace bench
