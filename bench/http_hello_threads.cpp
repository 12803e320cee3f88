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
#include "plain_listener.hpp"

int main(int argc, char** argv) {
  const int listener = bench::listen_from_args(argc, argv, "http_hello_threads");
  const int one = 1;
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
