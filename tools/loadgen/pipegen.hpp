// pipegen's two load loops (pipegen.cpp: epoll, for --churn; pipegen_uring.cpp: io_uring, for
// the kept-alive shapes) and what they share.
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>
#include <vector>

namespace pipegen {

using steady = std::chrono::steady_clock;

struct shape {
  int port = 0;
  int connections = 256;
  int depth = 16;
  std::string_view batch;  // `depth` requests, sent in one write
  std::string_view reply;  // one reply; every byte received is checked against it
  steady::time_point counting_from, end;
};

struct totals {
  long long requests = 0, errors = 0;
  std::vector<double> batch_ms;  // round trip of each batch counted
};

// Keeps `connections` connections busy from `counting_from` - warm-up until `end`, each with one
// batch in flight. False with a message on stderr when it cannot start (no ring, no connection).
bool run_uring(const shape& s, totals& out);

}  // namespace pipegen
