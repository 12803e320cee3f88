// task_echo: an echo server and its clients written as stackless tasks (weft::task), C++20
// coroutines that park in co_await instead of on a stack. A task per connection on each side;
// every line must come back intact.
//
//   task_echo [clients] [lines]      (default 100 clients x 100 lines)
#include <weft/weft.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

using weft::net::tcp_listener;
using weft::net::tcp_stream;

weft::task<void> echo(tcp_stream s) {
  char buf[4096];
  std::error_code ec;  // a client that resets or vanishes just ends its task
  for (std::size_t n; (n = co_await s.async_read(std::span(buf), ec)) != 0 && !ec;)
    co_await s.async_write_all(std::string_view(buf, n), ec);
}

weft::task<void> serve(tcp_listener& listener, int connections) {
  for (int i = 0; i < connections; ++i) weft::go(echo(co_await listener.async_accept()));
}

// Sends `lines` lines and reads each back; returns how many came back intact.
weft::task<int> client(weft::net::address server, int id, int lines) {
  tcp_stream s = co_await tcp_stream::async_connect(server, std::chrono::seconds(5));
  s.set_read_timeout(std::chrono::seconds(5));  // a stuck server fails the client, not the run
  int intact = 0;
  std::string pending;
  char buf[256];
  for (int i = 0; i < lines; ++i) {
    const std::string line = "client " + std::to_string(id) + " line " + std::to_string(i) + "\n";
    co_await s.async_write_all(line);
    while (pending.find('\n') == std::string::npos) {
      const std::size_t n = co_await s.async_read(std::span(buf));
      if (n == 0) co_return intact;
      pending.append(buf, n);
    }
    const std::size_t end = pending.find('\n') + 1;
    intact += pending.compare(0, end, line) == 0;
    pending.erase(0, end);
  }
  co_return intact;
}

}  // namespace

int main(int argc, char** argv) {
  const int clients = argc > 1 ? std::stoi(argv[1]) : 100;
  const int lines = argc > 2 ? std::stoi(argv[2]) : 100;
  return weft::run([&] {
    auto listener = tcp_listener::bind("127.0.0.1:0");
    auto server = weft::spawn(serve(listener, clients));
    std::vector<weft::join_handle<int>> replies;
    for (int c = 0; c < clients; ++c)
      replies.push_back(weft::spawn(client(listener.local_address(), c, lines)));
    long intact = 0;
    for (auto& r : replies) intact += r.join();
    server.join();
    std::printf("%d task clients x %d lines: %ld echoed intact by tasks\n", clients, lines, intact);
    return intact == static_cast<long>(clients) * lines ? 0 : 1;
  });
}
