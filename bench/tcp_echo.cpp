// A TCP echo server with a green thread per connection. The Go peer is bench/peers/go/tcp_echo.
// Usage: tcp_echo [--port N] [--workers N]   (port 0: any; prints "listening on PORT")
#include <cstdio>
#include <string>
#include <weft/weft.hpp>

#include "server_args.hpp"

int main(int argc, char** argv) {
  const bench::server_args args = bench::parse_server_args(argc, argv);
  weft::config cfg;
  cfg.workers = args.workers;
  return weft::run(
      [&] {
        auto listener = weft::net::tcp_listener::bind("127.0.0.1:" + std::to_string(args.port),
                                                      weft::net::listen_options{.backlog = 4096});
        std::printf("listening on %u\n", listener.port());
        std::fflush(stdout);
        for (;;) {
          weft::go([s = listener.accept()]() mutable {
            std::byte buf[16384];
            std::error_code ec;
            for (std::size_t n; (n = s.read(buf, ec)) != 0 && !ec;) {
              s.write_all(std::span(buf, n), ec);
              if (ec) return;
            }
          });
        }
        return 0;
      },
      cfg);
}
