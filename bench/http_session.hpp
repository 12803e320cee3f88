// One HTTP/1.1 keep-alive connection of the "Hello, World!" benchmark servers, over any
// blocking stream: bench/http_hello.cpp runs it on a green thread per connection,
// bench/http_hello_threads.cpp on an OS thread per connection. Same parsing and reply as the Go
// peer (bench/peers/go/http_hello).
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace bench {

inline constexpr std::string_view hello_reply =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

// `read(char*, size_t)` returns the bytes read, 0 at the end or on error; `write(string_view)`
// returns false on error. Answers every complete request in the buffer (pipelined ones in one
// write) and keeps a partial request for the next read.
template <class Read, class Write>
void serve_http(Read read, Write write) {
  char in[8192];
  std::size_t have = 0;
  std::string out;
  for (;;) {
    const std::size_t n = read(in + have, sizeof in - have);
    if (n == 0) return;
    have += n;
    std::string_view pending(in, have);
    for (std::size_t end; (end = pending.find("\r\n\r\n")) != std::string_view::npos;) {
      out.append(hello_reply);
      pending.remove_prefix(end + 4);
    }
    if (pending.size() == sizeof in) return;  // a request larger than the buffer: refuse it
    std::memmove(in, pending.data(), pending.size());
    have = pending.size();
    if (!out.empty()) {
      if (!write(std::string_view(out))) return;
      out.clear();
    }
  }
}

}  // namespace bench
