// A loopback listener for the benchmark servers that run without weft (bench/http_hello_threads,
// bench/http_hello_epoll): `--port N` from the command line (0: any), "listening on PORT" on
// stdout once it listens, as tools/http_bench.sh expects.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bench {

// The listening descriptor; exits the program with a message if it cannot listen.
inline int listen_from_args(int argc, char** argv, const char* program, int socket_flags = 0) {
  unsigned port = 8080;
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::strcmp(argv[i], "--port") == 0) port = static_cast<unsigned>(std::atoi(argv[i + 1]));
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | socket_flags, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(listener, 4096) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::fprintf(stderr, "%s: cannot listen on port %u: %s\n", program, port, std::strerror(errno));
    std::exit(1);
  }
  std::printf("listening on %u\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  return listener;
}

}  // namespace bench
