// An HTTP/1.1 keep-alive "Hello, World!" server with a green thread per connection, written in
// plain blocking style. The Go peer is bench/peers/go/http_hello (same parsing, same reply).
// Usage: http_hello [--port N] [--workers N] [--coop-budget N] [--adversary] [--parked N]
// (port 0: any; prints "listening on PORT"; with --adversary, "adversary ready" on stderr once
// bench/adversary.hpp's load is in place).
#include <cstdio>
#include <string>
#include <string_view>
#include <weft/weft.hpp>

#include "adversary.hpp"
#include "http_session.hpp"
#include "server_args.hpp"

namespace {

void serve(weft::net::tcp_stream& s) {
  bench::serve_http(
      [&](char* buf, std::size_t len) {
        std::error_code ec;
        const std::size_t n = s.read(std::span(buf, len), ec);
        return ec ? 0 : n;
      },
      [&](std::string_view out) {
        std::error_code ec;
        s.write_all(out, ec);
        return !ec;
      });
}

}  // namespace

int main(int argc, char** argv) {
  const bench::server_args args = bench::parse_server_args(argc, argv);
  weft::config cfg;
  cfg.workers = args.workers;
  if (args.coop_budget >= 0) cfg.coop_budget = static_cast<std::uint32_t>(args.coop_budget);
  return weft::run(
      [&] {
        auto listener = weft::net::tcp_listener::bind("127.0.0.1:" + std::to_string(args.port),
                                                      weft::net::listen_options{.backlog = 4096});
        std::printf("listening on %u\n", listener.port());
        std::fflush(stdout);
        if (args.adversary) bench::start_adversary(args.parked);
        for (;;) {
          weft::go([s = listener.accept()]() mutable { serve(s); });
        }
        return 0;
      },
      cfg);
}
