// The floor under the HTTP rows: the same keep-alive "Hello, World!" server as bench/http_hello
// (same parsing, same reply, pipelined requests answered in one write) as one thread of plain
// level-triggered epoll, with no runtime at all. What a request costs it is what the kernel
// charges for the socket calls; a runtime's cost per request above it is the runtime's own.
// Usage: http_hello_epoll [--port N] (0: any); prints "listening on <port>".
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http_session.hpp"
#include "plain_listener.hpp"

namespace {

struct connection {
  int fd = -1;
  char in[8192];
  std::size_t have = 0;
  std::string out;  // replies not yet written (the socket was full)
};

// Answers every complete request in the buffer with one write; false: close the connection.
bool on_readable(connection& c) {
  const ssize_t n = read(c.fd, c.in + c.have, sizeof c.in - c.have);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (n == 0) return false;
  c.have += static_cast<std::size_t>(n);
  std::string_view pending(c.in, c.have);
  const bool was_empty = c.out.empty();
  for (std::size_t end; (end = pending.find("\r\n\r\n")) != std::string_view::npos;) {
    c.out.append(bench::hello_reply);
    pending.remove_prefix(end + 4);
  }
  if (pending.size() == sizeof c.in) return false;  // a request larger than the buffer
  std::memmove(c.in, pending.data(), pending.size());
  c.have = pending.size();
  if (!was_empty || c.out.empty()) return true;  // EPOLLOUT will flush what is queued
  const ssize_t w = write(c.fd, c.out.data(), c.out.size());
  if (w < 0 && errno != EAGAIN && errno != EINTR) return false;
  c.out.erase(0, w > 0 ? static_cast<std::size_t>(w) : 0);
  return true;
}

bool on_writable(connection& c) {
  const ssize_t w = write(c.fd, c.out.data(), c.out.size());
  if (w < 0 && errno != EAGAIN && errno != EINTR) return false;
  c.out.erase(0, w > 0 ? static_cast<std::size_t>(w) : 0);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const int listener = bench::listen_from_args(argc, argv, "http_hello_epoll", SOCK_NONBLOCK);
  const int one = 1;
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the listener
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  std::vector<epoll_event> events(1024);
  for (;;) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    for (int k = 0; k < n; ++k) {
      auto* c = static_cast<connection*>(events[static_cast<std::size_t>(k)].data.ptr);
      if (!c) {
        for (int fd;
             (fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as Go and weft do
          auto* fresh = new connection;
          fresh->fd = fd;
          epoll_event add{};
          add.events = EPOLLIN;
          add.data.ptr = fresh;
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &add);
        }
        continue;
      }
      const bool had_out = !c->out.empty();
      bool ok = true;
      if (events[static_cast<std::size_t>(k)].events & EPOLLOUT) ok = on_writable(*c);
      if (ok && (events[static_cast<std::size_t>(k)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        ok = on_readable(*c);
      if (!ok) {
        close(c->fd);  // also leaves the epoll set
        delete c;
        continue;
      }
      if (had_out != !c->out.empty()) {
        epoll_event mod{};
        mod.events = c->out.empty() ? EPOLLIN : EPOLLIN | EPOLLOUT;
        mod.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &mod);
      }
    }
  }
}
