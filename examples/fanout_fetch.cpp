// fanout_fetch: many concurrent TCP requests, each with its own deadline. A small server in the
// same program answers "GET <n>" with n squared, but takes 30 seconds over every tenth request.
// The client sends 100 requests at once, each in its own green thread of a scope, and bounds
// each by one second with go_with_deadline: the slow ones are cancelled (their socket waits
// throw weft::cancelled), the rest answer, and the whole takes about a second, not 30.
#include <weft/weft.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

namespace {

std::string read_line(weft::net::tcp_stream& s) {
  std::string line;
  char c;
  while (s.read(std::span(&c, 1)) == 1 && c != '\n') line += c;
  return line;
}

void serve(weft::net::tcp_listener& listener) {
  std::error_code ec;  // cancelled (operation_canceled) when main returns: the loop ends
  for (auto conn = listener.accept(ec); !ec; conn = listener.accept(ec))
    weft::go([s = std::move(conn)]() mutable {
      // A client whose deadline passed may hang up before it asks, or reset before it hears
      // the answer: that connection just ends (a server must not die of a client's failure).
      try {
        const std::string request = read_line(s);  // "GET <n>"
        long n = 0;
        const char* end = request.data() + request.size();
        if (request.size() <= 4 || request.compare(0, 4, "GET ") != 0 ||
            std::from_chars(request.data() + 4, end, n).ec != std::errc{})
          return;
        if (n % 10 == 0) weft::sleep_for(30s);  // a slow backend
        s.write_all(std::to_string(n * n) + "\n");
      } catch (const std::system_error&) {
      }
    });
}

}  // namespace

int main() {
  return weft::run([] {
    auto listener = weft::net::tcp_listener::bind("127.0.0.1:0");
    // The accept loop uses the listener, so it must end before the listener goes: as a child
    // of a scope declared after it, it is cancelled and joined first when main returns.
    weft::scope server_scope;
    server_scope.go([&] { serve(listener); });
    const auto server = listener.local_address();

    constexpr int requests = 100;
    std::atomic<int> answered{0}, correct{0}, timed_out{0};
    const auto start = std::chrono::steady_clock::now();
    {
      weft::scope s;
      for (long n = 1; n <= requests; ++n)
        s.go_with_deadline(1s, [&, n] {
          try {
            auto conn = weft::net::tcp_stream::connect(server);
            conn.write_all("GET " + std::to_string(n) + "\n");
            const std::string reply = read_line(conn);
            ++answered;
            if (reply == std::to_string(n * n)) ++correct;
          } catch (const weft::cancelled&) {
            ++timed_out;  // its deadline passed while it waited
            throw;        // ends this green thread as cancelled (not an error for the scope)
          }
        });
      s.wait();
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    std::printf("%d requests: %d answered (%d correct), %d cut off by their deadline\n", requests,
                answered.load(), correct.load(), timed_out.load());
    std::printf("took %s 30 s\n", ms < 10000 ? "well under" : "over");
    return answered + timed_out == requests && correct == answered ? 0 : 1;
  });
}
