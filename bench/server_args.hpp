// Command-line flags shared by the benchmark servers: --port N --workers N.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bench {

struct server_args {
  unsigned port = 8080;
  unsigned workers = 0;  // 0: WEFT_WORKERS, else the hardware threads
};

inline server_args parse_server_args(int argc, char** argv) {
  server_args a;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && std::strcmp(argv[i], "--port") == 0) {
      a.port = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (i + 1 < argc && std::strcmp(argv[i], "--workers") == 0) {
      a.workers = static_cast<unsigned>(std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--workers N]\n", argv[0]);
      std::exit(2);
    }
  }
  return a;
}

}  // namespace bench
