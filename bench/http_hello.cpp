// An HTTP/1.1 keep-alive "Hello, World!" server with a green thread per connection, written in
// plain blocking style. The Go peer is bench/peers/go/http_hello (same parsing, same reply).
// Usage: http_hello [--port N] [--workers N] [--coop-budget N] [--adversary] [--parked N]
// (port 0: any; prints "listening on PORT"; with --adversary, "adversary ready" on stderr once
// bench/adversary.hpp's load is in place).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <weft/weft.hpp>

#include "adversary.hpp"
#include "server_args.hpp"

namespace {

constexpr std::string_view reply =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

// Answers every complete request in the buffer (pipelined ones in one write); keeps a partial
// request for the next read.
void serve(weft::net::tcp_stream& s) {
  char in[8192];
  std::size_t have = 0;
  std::string out;
  for (;;) {
    std::error_code ec;
    const std::size_t n = s.read(std::span(in + have, sizeof in - have), ec);
    if (ec || n == 0) return;
    have += n;
    std::string_view pending(in, have);
    for (std::size_t end; (end = pending.find("\r\n\r\n")) != std::string_view::npos;) {
      out.append(reply);
      pending.remove_prefix(end + 4);
    }
    if (pending.size() == sizeof in) return;  // a request larger than the buffer: refuse it
    std::memmove(in, pending.data(), pending.size());
    have = pending.size();
    if (!out.empty()) {
      s.write_all(out, ec);
      if (ec) return;
      out.clear();
    }
  }
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
