// Round trips over the kernel's local sockets, two green threads in one process taking turns:
// a UDP echo (64-byte datagrams over loopback) and a Unix-stream ping-pong (64-byte messages
// over a listener's connection, each read into a 4 KiB buffer as a server reads requests). Every
// turn parks the receiver in the netpoller and wakes it through the socket, so this measures weft's
// I/O wait path, not the channels. The Go peer (bench/peers/go/io_pingpong) does the same with
// goroutines and net.
//
//   io_pingpong <workers> <runs> <round trips>
// prints "<shape> workers=<n> ns_per_op=<x>" per run, as the Go peer does.
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <weft/weft.hpp>

namespace {

constexpr std::size_t message_size = 64;
using buffer = std::array<std::byte, message_size>;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The server side answers from wherever each datagram came (recv_from/send_to), the client is
// connected to it (send/recv), as a DNS client and server would be.
double udp_echo(long round_trips) {
  auto server = weft::net::udp_socket::bind("127.0.0.1:0");
  auto client = weft::net::udp_socket::connect(server.local_address().to_string());
  auto echo = weft::spawn([&] {
    buffer b{};
    weft::net::address from;
    for (long i = 0; i < round_trips; ++i) {
      const std::size_t n = server.recv_from(b, from);
      server.send_to(std::span(b.data(), n), from);
    }
  });
  buffer out{}, in{};
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < round_trips; ++i) {
    out[0] = static_cast<std::byte>(i);
    client.send(out);
    if (client.recv(in) != message_size || in[0] != out[0])
      throw std::runtime_error("udp echo: wrong datagram back");
  }
  const double s = seconds_since(t0);
  echo.join();
  return s;
}

// Reads one message the way a server reads requests: into a buffer larger than any message,
// as much as has arrived, until the whole message is there.
using read_buffer = std::array<std::byte, 4096>;

void read_message(weft::io::stream& s, read_buffer& b) {
  for (std::size_t got = 0; got < message_size;) {
    const std::size_t n = s.read(std::span(b).subspan(got));
    if (n == 0) throw std::runtime_error("unix ping-pong: peer closed");
    got += n;
  }
}

double unix_pingpong(long round_trips) {
  const std::string path = "/tmp/weft-io-pingpong-" + std::to_string(::getpid()) + ".sock";
  auto listener = weft::net::unix_listener::bind(path);
  auto pong = weft::spawn([&] {
    auto s = listener.accept();
    read_buffer b{};
    for (long i = 0; i < round_trips; ++i) {
      read_message(s, b);
      s.write_all(std::span(b).first(message_size));
    }
  });
  auto ping = weft::net::unix_stream::connect(path);
  buffer out{};
  read_buffer in{};
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < round_trips; ++i) {
    out[0] = static_cast<std::byte>(i);
    ping.write_all(out);
    read_message(ping, in);
    if (in[0] != out[0]) throw std::runtime_error("unix ping-pong: wrong message back");
  }
  const double s = seconds_since(t0);
  pong.join();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: io_pingpong <workers> <runs> <round trips>\n");
    return 2;
  }
  const unsigned workers = static_cast<unsigned>(std::atoi(argv[1]));
  const int runs = std::atoi(argv[2]);
  const long round_trips = std::atol(argv[3]);
  weft::config cfg;
  cfg.workers = workers;
  weft::run(
      [&] {
        udp_echo(round_trips / 10);  // warm-up: sockets, stacks, the poller's records
        unix_pingpong(round_trips / 10);
        for (int r = 0; r < runs; ++r) {
          std::printf("udp_echo workers=%u ns_per_op=%.1f\n", workers,
                      udp_echo(round_trips) * 1e9 / static_cast<double>(round_trips));
          std::printf("unix_pingpong workers=%u ns_per_op=%.1f\n", workers,
                      unix_pingpong(round_trips) * 1e9 / static_cast<double>(round_trips));
          std::fflush(stdout);
        }
      },
      cfg);
}
