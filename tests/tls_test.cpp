// A real C library that owns its sockets, run on weft through io::fd_waiter: OpenSSL's
// non-blocking API does a verified TLS handshake and an echo from green threads, over loopback
// TCP sockets the test makes itself (as libpq or libcurl would), with small socket buffers so
// that both SSL_ERROR_WANT_READ and SSL_ERROR_WANT_WRITE park. Also: a peer that stalls in the
// handshake meets the deadline, one that vanishes mid-session is an error, not a hang, and no
// descriptor is left open.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
namespace io = weft::io;

class tls_test : public weft_test::workers {};
WEFT_WORKER_COUNTS(tls_test);

// OpenSSL is C with deep call chains (key exchange, certificate checks): its green threads get
// a stack as roomy as a thread's, which costs only the pages it touches.
const weft::spawn_options tls_stack{.stack_size = 1 << 20};

template <class T, void (*Free)(T*)>
struct openssl_deleter {
  void operator()(T* p) const noexcept { Free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509, X509_free>>;
using ctx_ptr = std::unique_ptr<SSL_CTX, openssl_deleter<SSL_CTX, SSL_CTX_free>>;
using ssl_ptr = std::unique_ptr<SSL, openssl_deleter<SSL, SSL_free>>;

std::string openssl_errors() {
  std::string s;
  for (unsigned long e; (e = ERR_get_error()) != 0;) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    s += std::string(s.empty() ? "" : "; ") + buf;
  }
  return s.empty() ? "no OpenSSL error queued" : s;
}

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string(what) + ": " + openssl_errors());
}

constexpr const char* server_name = "weft.test";

// A server and a client context: the server's self-signed certificate for weft.test, made in
// memory, is the only one the client trusts, and the client checks the name too.
struct tls_contexts {
  pkey_ptr key;
  x509_ptr cert;
  ctx_ptr server;
  ctx_ptr client;

  tls_contexts() {
    key.reset(EVP_EC_gen("P-256"));
    check(key != nullptr, "EVP_EC_gen");
    cert.reset(X509_new());
    check(cert != nullptr, "X509_new");
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    check(X509_set_pubkey(cert.get(), key.get()) == 1, "X509_set_pubkey");
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(server_name), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");

    server.reset(SSL_CTX_new(TLS_server_method()));
    check(server != nullptr, "SSL_CTX_new");
    check(SSL_CTX_use_certificate(server.get(), cert.get()) == 1, "SSL_CTX_use_certificate");
    check(SSL_CTX_use_PrivateKey(server.get(), key.get()) == 1, "SSL_CTX_use_PrivateKey");

    client.reset(SSL_CTX_new(TLS_client_method()));
    check(client != nullptr, "SSL_CTX_new");
    SSL_CTX_set_verify(client.get(), SSL_VERIFY_PEER, nullptr);
    check(X509_STORE_add_cert(SSL_CTX_get_cert_store(client.get()), cert.get()) == 1,
          "X509_STORE_add_cert");
  }
};

// A TLS session over a non-blocking socket the session owns, parked on through an fd_waiter.
class tls_session {
 public:
  tls_session(SSL_CTX* ctx, int fd, bool client) : fd_(fd), ssl_(SSL_new(ctx)), ready_(fd) {
    check(ssl_ != nullptr, "SSL_new");
    check(SSL_set_fd(ssl_.get(), fd) == 1, "SSL_set_fd");
    if (client) {
      check(SSL_set1_host(ssl_.get(), server_name) == 1, "SSL_set1_host");
      SSL_set_tlsext_host_name(ssl_.get(), server_name);
      SSL_set_connect_state(ssl_.get());
    } else {
      SSL_set_accept_state(ssl_.get());
    }
  }
  ~tls_session() {
    ready_.close();  // unregister before the descriptor goes
    ::close(fd_);
  }
  tls_session(const tls_session&) = delete;
  tls_session& operator=(const tls_session&) = delete;

  void set_deadline(io::clock::time_point d) { deadline_ = d; }
  void handshake() {
    drive([&] { return SSL_do_handshake(ssl_.get()); }, "SSL_do_handshake");
  }
  // Writes all of `data` (OpenSSL retries a partial record itself: same buffer, same length).
  void write_all(const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
      const int chunk = static_cast<int>(std::min<std::size_t>(data.size() - done, 1 << 20));
      done += static_cast<std::size_t>(
          drive([&] { return SSL_write(ssl_.get(), data.data() + done, chunk); }, "SSL_write"));
    }
  }
  // Up to `max` bytes; 0 once the peer sent close_notify.
  std::string read_some(std::size_t max) {
    std::string buf(max, '\0');
    const int n =
        drive([&] { return SSL_read(ssl_.get(), buf.data(), static_cast<int>(max)); }, "SSL_read");
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }
  std::string read_exactly(std::size_t n) {
    std::string out;
    while (out.size() < n) {
      std::string part = read_some(n - out.size());
      if (part.empty()) throw std::runtime_error("TLS peer closed early");
      out += part;
    }
    return out;
  }
  void shutdown() {
    drive([&] { return SSL_shutdown(ssl_.get()) >= 0 ? 1 : -1; }, "SSL_shutdown");
  }
  bool session_reused() const { return SSL_session_reused(ssl_.get()) == 1; }
  std::string version() const { return SSL_get_version(ssl_.get()); }
  int waits() const { return waits_; }

 private:
  // Calls `op` until it succeeds, parking on the socket whenever OpenSSL asks for it. The
  // error queue is per OS thread: it is cleared and read on the worker that ran `op`, with no
  // park in between, so a green thread that moves between workers still reads its own errors.
  template <class Op>
  int drive(Op op, const char* what) {
    for (;;) {
      ERR_clear_error();
      const int r = op();
      if (r > 0) return r;
      switch (SSL_get_error(ssl_.get(), r)) {
        case SSL_ERROR_WANT_READ:
          ++waits_;
          ready_.wait_readable(deadline_);
          break;
        case SSL_ERROR_WANT_WRITE:
          ++waits_;
          ready_.wait_writable(deadline_);
          break;
        case SSL_ERROR_ZERO_RETURN:
          return 0;
        case SSL_ERROR_SYSCALL:
          throw std::runtime_error(std::string(what) + ": " +
                                   (errno ? std::strerror(errno) : "unexpected end of stream"));
        default:
          throw std::runtime_error(std::string(what) + ": " + openssl_errors());
      }
    }
  }

  int fd_;
  ssl_ptr ssl_;
  io::fd_waiter ready_;
  io::clock::time_point deadline_ = io::no_deadline;
  int waits_ = 0;
};

int nonblocking_socket() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "socket");
  // Small buffers: a 64 KiB record cannot go out in one write, so writers park too.
  const int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const int on = 1;  // TLS records follow each other closely: no Nagle delay between them
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  return fd;
}

// A listening loopback socket of the test's own, accepted from through an fd_waiter.
struct raw_listener {
  int fd = -1;
  sockaddr_in addr{};
  io::fd_waiter ready;

  raw_listener() {
    fd = nonblocking_socket();
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 1024) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::system_error(errno, std::system_category(), "listen");
    ready = io::fd_waiter(fd);
  }
  ~raw_listener() {
    ready.close();
    ::close(fd);
  }
  int accept() {
    for (;;) {
      const int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c >= 0) return c;
      if (errno != EAGAIN && errno != EINTR)
        throw std::system_error(errno, std::system_category(), "accept4");
      ready.wait_readable();
    }
  }
};

// Connects a non-blocking socket the way a C library does: EINPROGRESS, wait writable, SO_ERROR.
int connect_to(const sockaddr_in& addr) {
  const int fd = nonblocking_socket();
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      const int e = errno;
      ::close(fd);
      throw std::system_error(e, std::system_category(), "connect");
    }
    {
      io::fd_waiter ready(fd);
      ready.wait_writable(io::clock::now() + 10s);
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ::close(fd);
      throw std::system_error(err, std::system_category(), "connect");
    }
  }
  return fd;
}

std::set<std::string> open_descriptors() {
  std::set<std::string> out;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.' || std::atoi(e->d_name) == dirfd(d)) continue;
    char target[256] = {};
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    if (readlink(link.c_str(), target, sizeof target - 1) < 0) continue;
    if (std::string(target) == "anon_inode:[pidfd]" || std::strncmp(target, "/proc/", 6) == 0)
      continue;
    out.insert(std::string(e->d_name) + " -> " + target);
  }
  closedir(d);
  return out;
}

// Messages of every size from 1 byte to 64 KiB, each different, so that a byte lost, repeated
// or reordered anywhere fails the comparison.
std::string message(int session, int i) {
  std::mt19937 rng(static_cast<unsigned>(session * 1000 + i));
  const std::size_t size = i % 4 == 3 ? 64 * 1024 : 1 + rng() % 3000;
  std::string m(size, '\0');
  for (auto& c : m) c = static_cast<char>(rng());
  return m;
}

TEST_P(tls_test, handshake_and_echo_through_fd_waiter) {
  constexpr std::size_t echo_piece = 8 * 1024;
  constexpr int sessions = weft_test::sanitized ? 8 : 32;
  constexpr int messages = 24;
  tls_contexts tls;
  std::set<std::string> before;
  std::atomic<long> echoed_bytes{0};
  std::atomic<int> verified{0};
  std::atomic<long> waits{0};
  weft::run(
      [&] {
        { auto warm = io::pipe(); }  // the netpoller's own descriptors, kept for the process
        before = open_descriptors();
        {
          raw_listener listener;
          weft::wait_group servers;
          servers.add(sessions);
          weft::go(tls_stack, [&] {
            for (int s = 0; s < sessions; ++s) {
              const int fd = listener.accept();
              weft::go(tls_stack, [&, fd] {
                {
                  tls_session tls_server(tls.server.get(), fd, false);
                  tls_server.set_deadline(io::clock::now() + 60s);
                  tls_server.handshake();
                  // Echo until the client's close_notify, then answer it.
                  for (std::string part; !(part = tls_server.read_some(16 * 1024)).empty();) {
                    tls_server.write_all(part);
                    echoed_bytes += static_cast<long>(part.size());
                  }
                  tls_server.shutdown();
                  waits += tls_server.waits();
                }
                servers.done();  // after the session closed its socket: the count follows
              });
            }
          });
          std::vector<weft::join_handle<int>> clients;
          for (int s = 0; s < sessions; ++s)
            clients.push_back(weft::spawn(tls_stack, [&, s] {
              tls_session c(tls.client.get(), connect_to(listener.addr), true);
              c.set_deadline(io::clock::now() + 60s);
              c.handshake();
              EXPECT_EQ(c.version(), "TLSv1.3");
              int ok = 0;
              for (int i = 0; i < messages; ++i) {
                // In pieces the size of a socket buffer, each read back before the next goes:
                // were the client to write 64 KiB before reading, the two sides would fill each
                // other's buffers and wait on each other forever.
                const std::string m = message(s, i);
                std::string back;
                for (std::size_t at = 0; at < m.size(); at += echo_piece) {
                  const std::string piece = m.substr(at, echo_piece);
                  c.write_all(piece);
                  back += c.read_exactly(piece.size());
                }
                if (back == m) ++ok;
              }
              c.shutdown();                   // our close_notify ...
              EXPECT_EQ(c.read_some(1), "");  // ... and the server's
              waits += c.waits();
              return ok;
            }));
          for (auto& c : clients) verified += c.join();
          servers.wait();
        }
        // Inside run: under io_uring each worker's ring is open until run ends.
        EXPECT_EQ(open_descriptors(), before);
      },
      cfg());
  long expected_bytes = 0;
  for (int s = 0; s < sessions; ++s)
    for (int i = 0; i < messages; ++i) expected_bytes += static_cast<long>(message(s, i).size());
  EXPECT_EQ(verified.load(), sessions * messages);
  EXPECT_EQ(echoed_bytes.load(), expected_bytes);
  // Both directions parked, many times: the sockets' buffers are far smaller than the records.
  EXPECT_GT(waits.load(), sessions * messages);
}

TEST_P(tls_test, a_peer_that_stalls_in_the_handshake_meets_the_deadline) {
  tls_contexts tls;
  weft::run(
      [&] {
        raw_listener listener;
        // A "server" that accepts and never answers: the client's ClientHello goes unanswered.
        std::atomic<int> silent{-1};
        weft::go([&] { silent = listener.accept(); });
        tls_session c(tls.client.get(), connect_to(listener.addr), true);
        const auto start = io::clock::now();
        c.set_deadline(start + 100ms);
        try {
          c.handshake();
          ADD_FAILURE() << "handshake with a silent peer completed";
        } catch (const std::system_error& e) {
          EXPECT_EQ(e.code(), std::errc::timed_out) << e.what();
        }
        const auto waited = io::clock::now() - start;
        EXPECT_GE(waited, 100ms);
        EXPECT_LT(waited, 10s);
        while (silent < 0) weft::sleep_for(1ms);
        ::close(silent);
      },
      cfg());
}

TEST_P(tls_test, a_peer_that_vanishes_mid_session_is_an_error_not_a_hang) {
  tls_contexts tls;
  weft::run(
      [&] {
        raw_listener listener;
        weft::chan<int> accepted(1);
        weft::go(tls_stack, [&] {
          tls_session s(tls.server.get(), listener.accept(), false);
          s.handshake();
          s.write_all(std::string(100, 'x'));
          accepted.send(1);
        });  // the session ends without close_notify: the socket just closes
        tls_session c(tls.client.get(), connect_to(listener.addr), true);
        c.set_deadline(io::clock::now() + 30s);
        c.handshake();
        EXPECT_EQ(c.read_exactly(100), std::string(100, 'x'));
        accepted.recv();
        try {
          const std::string more = c.read_some(100);
          ADD_FAILURE() << "read past a vanished peer returned " << more.size() << " bytes";
        } catch (const std::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("SSL_read"), std::string::npos) << e.what();
        }
      },
      cfg());
}

}  // namespace
