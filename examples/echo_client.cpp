// echo_client: many concurrent TCP clients as green threads. Each connects to an echo server,
// sends numbered lines, reads each echo back and checks it; the program prints the totals.
//
//   echo_client <address> [clients] [lines]     (default 8 clients x 100 lines)
#include <weft/weft.hpp>

#include <atomic>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: echo_client <address> [clients] [lines]\n");
    return 2;
  }
  const std::string address = argv[1];
  const int clients = argc > 2 ? std::stoi(argv[2]) : 8;
  const int lines = argc > 3 ? std::stoi(argv[3]) : 100;
  return weft::run([&] {
    std::atomic<int> echoed{0};
    weft::scope s(std::chrono::seconds(30));  // nothing below may take longer than this
    for (int c = 0; c < clients; ++c)
      s.go([&, c] {
        auto conn = weft::net::tcp_stream::connect(address);
        for (int i = 0; i < lines; ++i) {
          const std::string line =
              "client " + std::to_string(c) + " line " + std::to_string(i) + "\n";
          conn.write_all(line);
          std::string back(line.size(), '\0');
          for (std::size_t got = 0; got < back.size();) {
            const std::size_t n = conn.read(std::span(back).subspan(got));
            if (n == 0) throw std::runtime_error("the server closed the connection");
            got += n;
          }
          if (back == line) ++echoed;
        }
      });
    s.wait();  // rethrows the first failure (a refused connection, a timeout)
    std::printf("%d clients x %d lines: %d echoed intact\n", clients, lines, echoed.load());
    return echoed == clients * lines ? 0 : 1;
  });
}
