// weft::net::resolve: getaddrinfo on the blocking pool, bounded by a timeout.
//
// A lookup may outlive its caller (the timeout passed, or the caller was cancelled): it runs in a
// green thread of its own that owns its inputs and result, and hands the result over through a
// buffered channel that nobody may read any more. No worker ever calls getaddrinfo.
#include "resolve.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <charconv>
#include <memory>
#include <string>

#include "io_wait.hpp"
#include "runtime/scheduler.hpp"
#include "weft/blocking.hpp"
#include "weft/cancel.hpp"
#include "weft/chan.hpp"
#include "weft/runtime.hpp"
#include "weft/select.hpp"

namespace weft::net {
namespace {

struct gai_category_t : std::error_category {
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int e) const override { return gai_strerror(e); }
};
const gai_category_t gai_category_instance;

}  // namespace

namespace detail_resolve {

// Blocks the calling OS thread.
void run_lookup(lookup& l) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;  // one entry per address, not one per socket type
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(l.host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    l.ec = rc == EAI_SYSTEM ? std::error_code(errno, std::system_category())
                            : std::error_code(rc, gai_category_instance);
    return;
  }
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET6)
      reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_port = htons(l.port);
    else if (ai->ai_family == AF_INET)
      reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_port = htons(l.port);
    else
      continue;
    l.found.push_back(address::from_sockaddr(ai->ai_addr, ai->ai_addrlen));
  }
  freeaddrinfo(res);
  if (l.found.empty()) l.ec = std::error_code(EAI_NONAME, gai_category_instance);
}

std::shared_ptr<lookup> start_lookup(std::string_view host, std::uint16_t port) {
  auto job = std::make_shared<lookup>();
  job->host.assign(host);
  job->port = port;
  weft::go([job]() mutable {
    weft::blocking([&] { run_lookup(*job); });
    job->done.try_send(true);
  });
  return job;
}

bool split_host_port(std::string_view text, std::string_view& host, std::uint16_t& port,
                     bool& bracketed, std::error_code& ec) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return false;
  }
  host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned value = 0;
  auto [end, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (err != std::errc{} || end != port_text.data() + port_text.size() || value > 65535 ||
      port_text.empty()) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return false;
  }
  port = static_cast<std::uint16_t>(value);
  bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  return true;
}

bool numeric_address(std::string_view host, std::uint16_t port, bool bracketed, address& out) {
  const std::string h(host);
  if (h.empty() || h == "*") {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_ANY);
    in.sin_port = htons(port);
    out = address::from_sockaddr(reinterpret_cast<sockaddr*>(&in), sizeof in);
    return true;
  }
  sockaddr_in in{};
  if (!bracketed && inet_pton(AF_INET, h.c_str(), &in.sin_addr) == 1) {
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    out = address::from_sockaddr(reinterpret_cast<sockaddr*>(&in), sizeof in);
    return true;
  }
  sockaddr_in6 in6{};
  if (inet_pton(AF_INET6, h.c_str(), &in6.sin6_addr) == 1) {
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    out = address::from_sockaddr(reinterpret_cast<sockaddr*>(&in6), sizeof in6);
    return true;
  }
  return false;
}

}  // namespace detail_resolve

namespace {

std::vector<address> resolve_before(std::string_view host, std::uint16_t port,
                                    std::int64_t deadline, std::error_code& ec) {
  ec.clear();
  address numeric;
  if (detail_resolve::numeric_address(host, port, false, numeric)) return {numeric};
  if (!weft::in_green_thread()) {  // a plain OS thread may block: no timeout there
    detail_resolve::lookup job;
    job.host.assign(host);
    job.port = port;
    detail_resolve::run_lookup(job);
    ec = job.ec;
    return std::move(job.found);
  }
  auto job = detail_resolve::start_lookup(host, port);
  const std::int64_t left = deadline - detail::now_ns();
  bool finished = false;
  try {
    if (left > 0)
      weft::select(weft::on_recv(job->done, [&](std::optional<bool>) { finished = true; }),
                   weft::on_timeout(std::chrono::nanoseconds(left), [] {}));
  } catch (const weft::cancelled&) {
    if (detail::unwinding_for_shutdown()) throw;
    ec = std::make_error_code(std::errc::operation_canceled);
    return {};
  }
  if (!finished) {
    ec = std::make_error_code(std::errc::timed_out);
    return {};
  }
  ec = job->ec;
  return std::move(job->found);
}

}  // namespace

std::vector<address> resolve(std::string_view host, std::uint16_t port,
                             std::chrono::nanoseconds timeout, std::error_code& ec) {
  const std::int64_t now = detail::now_ns();
  const std::int64_t deadline =
      timeout.count() >= detail::no_deadline - now ? detail::no_deadline : now + timeout.count();
  return resolve_before(host, port, deadline, ec);
}

std::vector<address> resolve(std::string_view host, std::uint16_t port,
                             std::chrono::nanoseconds timeout) {
  std::error_code ec;
  std::vector<address> found = resolve(host, port, timeout, ec);
  if (ec) detail::throw_io_error(ec, "weft::net::resolve: " + std::string(host));
  return found;
}

bool detail_resolve::without_lookup(std::string_view host_port, std::vector<address>& out,
                                    std::string_view& host, std::uint16_t& port,
                                    std::error_code& ec) {
  ec.clear();
  bool bracketed = false;
  if (!split_host_port(host_port, host, port, bracketed, ec)) return true;
  address a;
  if (numeric_address(host, port, bracketed, a)) {
    out.push_back(a);
    return true;
  }
  if (bracketed) ec = std::make_error_code(std::errc::invalid_argument);
  return bracketed;
}

std::vector<address> resolve_host_port(std::string_view host_port, std::int64_t deadline,
                                       std::error_code& ec) {
  std::vector<address> found;
  std::string_view host;
  std::uint16_t port = 0;
  if (detail_resolve::without_lookup(host_port, found, host, port, ec)) return found;
  return resolve_before(host, port, deadline, ec);
}

}  // namespace weft::net
