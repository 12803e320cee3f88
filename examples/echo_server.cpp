// echo_server: a TCP server in blocking style, one green thread per connection. It prints the
// address it listens on, then echoes every byte back until the client closes.
//
//   echo_server [address] [--connections N]     (default 127.0.0.1:7000; N: exit after N)
//   then: echo_client 127.0.0.1:7000, or nc 127.0.0.1 7000
#include <weft/weft.hpp>

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  std::string address = "127.0.0.1:7000";
  long connections = -1;  // serve forever
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--connections") == 0 && i + 1 < argc)
      connections = std::stol(argv[++i]);
    else
      address = argv[i];
  }
  return weft::run([&] {
    auto listener = weft::net::tcp_listener::bind(address);
    std::printf("listening on %s\n", listener.local_address().to_string().c_str());
    std::fflush(stdout);
    weft::scope connections_scope;  // the connections still open when we stop are joined
    for (long served = 0; served != connections; ++served) {
      connections_scope.go([s = listener.accept()]() mutable {
        std::byte buf[4096];
        std::error_code ec;  // a client that resets or vanishes just ends its green thread
        for (std::size_t n; (n = s.read(buf, ec)) != 0 && !ec;) s.write_all(std::span(buf, n), ec);
      });
    }
    connections_scope.wait();
    std::printf("served %ld connections\n", connections);
  });
}
