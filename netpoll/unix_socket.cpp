// weft::net Unix sockets: names (paths and abstract), streams with SCM_RIGHTS, listeners that
// remove their file, datagrams.
#include "weft/unix_socket.hpp"

#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "io_wait.hpp"

namespace weft::net {
namespace {

std::error_code errno_code(int e = errno) noexcept {
  return std::error_code(e, std::system_category());
}

// The kernel's limit on descriptors in one SCM_RIGHTS message.
constexpr std::size_t max_fds_per_message = 253;

struct unix_name {
  sockaddr_un sa{};
  socklen_t len = 0;
};

// "@name" is abstract (a leading NUL, no terminator counted); anything else a path.
bool make_name(std::string_view path, unix_name& out, std::error_code& ec) {
  out.sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof out.sa.sun_path) {
    ec = std::make_error_code(path.empty() ? std::errc::invalid_argument
                                           : std::errc::filename_too_long);
    return false;
  }
  std::memcpy(out.sa.sun_path, path.data(), path.size());
  if (path.front() == '@') {
    out.sa.sun_path[0] = '\0';
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    out.sa.sun_path[path.size()] = '\0';
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  }
  return true;
}

std::string name_of(const sockaddr_un& sa, socklen_t len) {
  const socklen_t base = offsetof(sockaddr_un, sun_path);
  if (len <= base) return {};
  std::string name(sa.sun_path, len - base);
  if (name[0] == '\0')
    name[0] = '@';
  else
    name.resize(std::strlen(name.c_str()));
  return name;
}

int new_socket(int type, std::error_code& ec) {
  const int fd = ::socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ec = errno_code();
  return fd;
}

}  // namespace

// ---- unix_stream ----------------------------------------------------------------------------

unix_stream unix_stream::adopt(int fd, std::error_code& ec) {
  unix_stream s;
  s.attach_socket(fd, ec);
  return s;
}

unix_stream unix_stream::connect(std::string_view path, std::error_code& ec) {
  ec.clear();
  unix_name name;
  if (!make_name(path, name, ec)) return {};
  const int fd = new_socket(SOCK_STREAM, ec);
  if (fd < 0) return {};
  unix_stream s = adopt(fd, ec);
  if (ec) return {};
  s.connect_raw(reinterpret_cast<sockaddr*>(&name.sa), name.len, detail::no_deadline, ec);
  if (ec) return {};
  return s;
}

unix_stream unix_stream::connect(std::string_view path) {
  std::error_code ec;
  unix_stream s = connect(path, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_stream::connect to " + std::string(path));
  return s;
}

std::pair<unix_stream, unix_stream> unix_stream::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::system_error(errno_code(), "weft::net::unix_stream::pair");
  std::error_code ec;
  unix_stream a = adopt(fds[0], ec);
  if (ec) {
    ::close(fds[1]);
    detail::throw_io_error(ec, "weft::net::unix_stream::pair");
  }
  unix_stream b = adopt(fds[1], ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_stream::pair");
  return {std::move(a), std::move(b)};
}

void unix_stream::shutdown(shutdown_how how) {
  std::error_code ec;
  if (!usable(ec)) throw std::system_error(ec, "weft::net::unix_stream::shutdown");
  if (::shutdown(fd_, static_cast<int>(how)) != 0 && errno != ENOTCONN)
    throw std::system_error(errno_code(), "weft::net::unix_stream::shutdown");
}

std::size_t unix_stream::send_fds(std::span<const std::byte> data, std::span<const int> fds,
                                  std::error_code& ec) {
  ec.clear();
  if (data.empty() || fds.size() > max_fds_per_message) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return 0;
  }
  const ssize_t n = perform(
      true,
      [&](int fd) {
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_message)];
        iovec iov{const_cast<std::byte*>(data.data()), data.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (!fds.empty()) {
          msg.msg_control = control;
          msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
          cmsghdr* c = CMSG_FIRSTHDR(&msg);
          c->cmsg_level = SOL_SOCKET;
          c->cmsg_type = SCM_RIGHTS;
          c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
          std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        }
        return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
      },
      ec);
  if (n < 0) return 0;
  // The descriptors went with the first byte; the rest is plain data.
  const auto sent = static_cast<std::size_t>(n);
  return sent + write_all(data.subspan(sent), ec);
}

void unix_stream::send_fds(std::span<const std::byte> data, std::span<const int> fds) {
  std::error_code ec;
  send_fds(data, fds, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_stream::send_fds");
}

std::size_t unix_stream::recv_fds(std::span<std::byte> buffer, std::vector<int>& fds,
                                  std::error_code& ec) {
  ec.clear();
  if (buffer.empty()) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return 0;
  }
  bool dropped = false;
  const ssize_t n = perform(
      false,
      [&](int fd) {
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_message)];
        iovec iov{buffer.data(), buffer.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t r = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if (r < 0) return r;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
          if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
          const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
          const auto* first = reinterpret_cast<const unsigned char*>(CMSG_DATA(c));
          for (std::size_t i = 0; i < count; ++i) {
            int received;
            std::memcpy(&received, first + i * sizeof(int), sizeof(int));
            fds.push_back(received);
          }
        }
        dropped = msg.msg_flags & MSG_CTRUNC;
        return r;
      },
      ec);
  if (n < 0) return 0;
  if (dropped) ec = std::make_error_code(std::errc::message_size);
  return static_cast<std::size_t>(n);
}

std::size_t unix_stream::recv_fds(std::span<std::byte> buffer, std::vector<int>& fds) {
  std::error_code ec;
  const std::size_t n = recv_fds(buffer, fds, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_stream::recv_fds");
  return n;
}

unix_stream::credentials unix_stream::peer_credentials() const {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (!pd_ || getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    throw std::system_error(pd_ ? errno_code() : detail::closed_error(),
                            "weft::net::unix_stream::peer_credentials");
  return {cred.pid, cred.uid, cred.gid};
}

std::string unix_stream::peer_path() const {
  sockaddr_un sa{};
  socklen_t len = sizeof sa;
  if (!pd_ || getpeername(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    throw std::system_error(pd_ ? errno_code() : detail::closed_error(),
                            "weft::net::unix_stream::peer_path");
  return name_of(sa, len);
}

// ---- unix_listener --------------------------------------------------------------------------

unix_listener::unix_listener(unix_listener&& o) noexcept
    : pollable(std::move(o)), path_(std::move(o.path_)), backoffs_(o.backoffs_.load()) {
  o.path_.clear();
}

unix_listener& unix_listener::operator=(unix_listener&& o) noexcept {
  if (this != &o) {
    close();
    pollable::operator=(std::move(o));
    path_ = std::move(o.path_);
    o.path_.clear();
    backoffs_.store(o.backoffs_.load());
  }
  return *this;
}

unix_listener unix_listener::bind(std::string_view path, int backlog, std::error_code& ec) {
  ec.clear();
  unix_name name;
  if (!make_name(path, name, ec)) return {};
  const int fd = new_socket(SOCK_STREAM, ec);
  if (fd < 0) return {};
  if (::bind(fd, reinterpret_cast<sockaddr*>(&name.sa), name.len) != 0) {
    ec = errno_code();
    ::close(fd);
    return {};
  }
  const bool in_file_system = path.front() != '@';
  if (::listen(fd, backlog) != 0) {
    ec = errno_code();
    ::close(fd);
    if (in_file_system) ::unlink(std::string(path).c_str());
    return {};
  }
  unix_listener l;
  l.attach(fd, true, ec);
  if (ec) {
    if (in_file_system) ::unlink(std::string(path).c_str());
    return {};
  }
  if (in_file_system) l.path_.assign(path);
  return l;
}

unix_listener unix_listener::bind(std::string_view path, int backlog) {
  std::error_code ec;
  unix_listener l = bind(path, backlog, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_listener::bind to " + std::string(path));
  return l;
}

unix_stream unix_listener::accept(std::error_code& ec) {
  const int fd = accept_raw(ec, backoffs_);
  if (fd < 0) return {};
  return unix_stream::adopt(fd, ec);
}

unix_stream unix_listener::accept() {
  std::error_code ec;
  unix_stream s = accept(ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_listener::accept");
  return s;
}

void unix_listener::close() noexcept {
  pollable::close();
  if (!path_.empty()) {
    ::unlink(path_.c_str());
    path_.clear();
  }
}

// ---- unix_datagram --------------------------------------------------------------------------

unix_datagram unix_datagram::open(std::error_code& ec) {
  ec.clear();
  const int fd = new_socket(SOCK_DGRAM, ec);
  if (fd < 0) return {};
  unix_datagram d;
  d.attach(fd, true, ec);
  return d;
}

unix_datagram unix_datagram::bind(std::string_view path, std::error_code& ec) {
  unix_name name;
  ec.clear();
  if (!make_name(path, name, ec)) return {};
  unix_datagram d = open(ec);
  if (ec) return {};
  if (::bind(d.fd_, reinterpret_cast<sockaddr*>(&name.sa), name.len) != 0) {
    ec = errno_code();
    return {};
  }
  return d;
}

unix_datagram unix_datagram::bind(std::string_view path) {
  std::error_code ec;
  unix_datagram d = bind(path, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_datagram::bind to " + std::string(path));
  return d;
}

unix_datagram unix_datagram::unbound() {
  std::error_code ec;
  unix_datagram d = open(ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_datagram");
  return d;
}

unix_datagram unix_datagram::connect(std::string_view path, std::error_code& ec) {
  unix_name name;
  ec.clear();
  if (!make_name(path, name, ec)) return {};
  unix_datagram d = open(ec);
  if (ec) return {};
  int r;  // a datagram socket's connect only records the peer: retried if a signal cut it
  while ((r = ::connect(d.fd_, reinterpret_cast<sockaddr*>(&name.sa), name.len)) != 0 &&
         errno == EINTR) {
  }
  if (r != 0) {
    ec = errno_code();
    return {};
  }
  return d;
}

unix_datagram unix_datagram::connect(std::string_view path) {
  std::error_code ec;
  unix_datagram d = connect(path, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_datagram::connect to " + std::string(path));
  return d;
}

std::pair<unix_datagram, unix_datagram> unix_datagram::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::system_error(errno_code(), "weft::net::unix_datagram::pair");
  std::error_code ec;
  unix_datagram a, b;
  a.attach(fds[0], true, ec);
  if (ec) {
    ::close(fds[1]);
    detail::throw_io_error(ec, "weft::net::unix_datagram::pair");
  }
  b.attach(fds[1], true, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_datagram::pair");
  return {std::move(a), std::move(b)};
}

std::size_t unix_datagram::send_to(std::span<const std::byte> data, std::string_view path,
                                   std::error_code& ec) {
  unix_name name;
  ec.clear();
  if (!make_name(path, name, ec)) return 0;
  return send_datagram(data.data(), data.size(), reinterpret_cast<sockaddr*>(&name.sa), name.len,
                       ec);
}

std::size_t unix_datagram::send_to(std::span<const std::byte> data, std::string_view path) {
  std::error_code ec;
  const std::size_t n = send_to(data, path, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_datagram::send_to " + std::string(path));
  return n;
}

std::size_t unix_datagram::recv_from(std::span<std::byte> buffer, std::string& from,
                                     std::error_code& ec) {
  sockaddr_storage sa;
  socklen_t len = 0;
  const std::size_t n = recv_datagram(buffer.data(), buffer.size(), &sa, &len, ec);
  from = name_of(reinterpret_cast<const sockaddr_un&>(sa), len);
  return n;
}

std::size_t unix_datagram::recv_from(std::span<std::byte> buffer, std::string& from) {
  std::error_code ec;
  const std::size_t n = recv_from(buffer, from, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_datagram::recv_from");
  return n;
}

std::size_t unix_datagram::send(std::span<const std::byte> data, std::error_code& ec) {
  return send_datagram(data.data(), data.size(), nullptr, 0, ec);
}

std::size_t unix_datagram::send(std::span<const std::byte> data) {
  std::error_code ec;
  const std::size_t n = send(data, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_datagram::send");
  return n;
}

std::size_t unix_datagram::recv(std::span<std::byte> buffer, std::error_code& ec) {
  return recv_datagram(buffer.data(), buffer.size(), nullptr, nullptr, ec);
}

std::size_t unix_datagram::recv(std::span<std::byte> buffer) {
  std::error_code ec;
  const std::size_t n = recv(buffer, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::unix_datagram::recv");
  return n;
}

}  // namespace weft::net
