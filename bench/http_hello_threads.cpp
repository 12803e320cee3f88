// The OS-thread peer of bench/http_hello: the same server with a std::thread per connection and
// blocking sockets, which is what "plain blocking style" costs without green threads.
// Usage: http_hello_threads [--port N] (port 0: any; prints "listening on PORT").
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "http_session.hpp"

int main(int argc, char** argv) {
  unsigned port = 8080;
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::strcmp(argv[i], "--port") == 0) port = static_cast<unsigned>(std::atoi(argv[i + 1]));
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(listener, 4096) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("http_hello_threads: cannot listen");
    return 1;
  }
  std::printf("listening on %u\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  for (;;) {
    const int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::thread([fd] {
      bench::serve_http(
          [fd](char* buf, std::size_t n) {
            const ssize_t got = read(fd, buf, n);
            return got > 0 ? static_cast<std::size_t>(got) : 0;
          },
          [fd](std::string_view out) {
            while (!out.empty()) {
              const ssize_t put = write(fd, out.data(), out.size());
              if (put <= 0) return false;
              out.remove_prefix(static_cast<std::size_t>(put));
            }
            return true;
          });
      close(fd);
    }).detach();
  }
}
