// weft::fs: every call on the blocking pool, but reads and writes through the worker's ring
// under the io_uring backend (netpoll/ring.hpp); errors name the path.
#include "weft/fs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "netpoll/io_wait.hpp"
#include "netpoll/ring.hpp"
#include "runtime/scheduler.hpp"
#include "weft/blocking.hpp"
#include "weft/cancel.hpp"

namespace weft::fs {
namespace {

std::error_code errno_code(int e = errno) noexcept {
  return std::error_code(e, std::system_category());
}

// Runs `f` (which sets `ec` from errno on failure) on the blocking pool. A cancelled caller
// gets errc::operation_canceled once the call is over (or was taken back unstarted).
template <class F>
void on_pool(F&& f, std::error_code& ec) {
  ec.clear();
  try {
    weft::blocking(f);
  } catch (const weft::cancelled&) {
    if (detail::unwinding_for_shutdown()) throw;
    ec = std::make_error_code(std::errc::operation_canceled);
  }
}

void check(const std::error_code& ec, const char* call, const std::string& path) {
  if (ec) detail::throw_io_error(ec, std::string("weft::fs::") + call + " " + path);
}

// A read or write through the calling worker's io_uring ring, when it has one: true if it ran
// there (`n` and `ec` say how it went), false to use the blocking pool.
bool through_ring(bool write, int fd, void* buf, std::size_t len, std::int64_t offset, ssize_t& n,
                  std::error_code& ec) {
  detail::worker_ring* ring = detail::usable_ring();
  if (!ring) return false;
  ec.clear();
  for (;;) {
    const detail::ring_read_result r = detail::ring_file_io(*ring, write, fd, buf, len, offset);
    if (r.n == -EAGAIN) return false;  // no room on the ring
    if (r.n == -EINTR) continue;
    n = r.n < 0 ? -1 : r.n;
    if (r.n >= 0) return true;
    if (r.n == -ECANCELED && r.early == detail::io_wait_result::cancelled) {
      if (detail::unwinding_for_shutdown()) throw weft::cancelled{};
      ec = std::make_error_code(std::errc::operation_canceled);
    } else {
      ec = errno_code(static_cast<int>(-r.n));
    }
    return true;
  }
}

// Loops until every byte is written (write(2) may write less); pwrite when offset >= 0.
std::size_t write_fully(int fd, std::span<const std::byte> data, std::int64_t offset,
                        std::error_code& ec) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = offset < 0
                          ? ::write(fd, data.data() + done, data.size() - done)
                          : ::pwrite(fd, data.data() + done, data.size() - done,
                                     static_cast<off_t>(offset + static_cast<std::int64_t>(done)));
    if (n < 0) {
      if (errno == EINTR) continue;
      ec = errno_code();
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  return done;
}

// write_fully through the worker's ring: false (nothing written) to use the blocking pool.
bool ring_write_fully(int fd, std::span<const std::byte> data, std::int64_t offset,
                      std::size_t& done, std::error_code& ec) {
  done = 0;
  ec.clear();
  while (done < data.size()) {
    ssize_t n = 0;
    const std::int64_t at = offset < 0 ? -1 : offset + static_cast<std::int64_t>(done);
    auto* from = const_cast<std::byte*>(data.data() + done);  // the ring's API is not const
    if (!through_ring(true, fd, from, data.size() - done, at, n, ec)) {
      if (done == 0) return false;
      // The ring went away mid-way (the end of run): the rest on the pool.
      std::size_t rest = 0;
      on_pool([&] { rest = write_fully(fd, data.subspan(done), at, ec); }, ec);
      done += rest;
      return true;
    }
    if (ec) return true;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

int open_flags(const open_options& o) {
  int flags = O_CLOEXEC;
  flags |= o.read && (o.write || o.append) ? O_RDWR : (o.write || o.append) ? O_WRONLY : O_RDONLY;
  if (o.create) flags |= O_CREAT;
  if (o.truncate) flags |= O_TRUNC;
  if (o.append) flags |= O_APPEND;
  if (o.exclusive) flags |= O_EXCL;
  return flags;
}

}  // namespace

file::file(file&& o) noexcept : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)) {}

file& file::operator=(file&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    path_ = std::move(o.path_);
  }
  return *this;
}

file::~file() {
  close();
}

void file::close() noexcept {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

file file::open(const std::filesystem::path& path, const open_options& opts, std::error_code& ec) {
  int fd = -1;
  const int flags = open_flags(opts);
  on_pool(
      [&] {
        fd = ::open(path.c_str(), flags, static_cast<mode_t>(opts.permissions));
        if (fd < 0) ec = errno_code();
      },
      ec);
  if (fd < 0) return {};
  if (ec) {  // cancelled after the open ran: nothing may leak
    ::close(fd);
    return {};
  }
  return file(fd, path.string());
}

file file::open(const std::filesystem::path& path, const open_options& opts) {
  std::error_code ec;
  file f = open(path, opts, ec);
  check(ec, "open", path.string());
  return f;
}

file file::create(const std::filesystem::path& path) {
  return open(path, {.read = false, .write = true, .create = true, .truncate = true});
}

std::size_t file::read(std::span<std::byte> buffer, std::error_code& ec) {
  ssize_t n = 0;
  if (through_ring(false, fd_, buffer.data(), buffer.size(), -1, n, ec))
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  on_pool(
      [&] {
        do n = ::read(fd_, buffer.data(), buffer.size());
        while (n < 0 && errno == EINTR);
        if (n < 0) ec = errno_code();
      },
      ec);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

std::size_t file::read(std::span<std::byte> buffer) {
  std::error_code ec;
  const std::size_t n = read(buffer, ec);
  check(ec, "file::read", path_);
  return n;
}

std::size_t file::read_at(std::span<std::byte> buffer, std::uint64_t offset, std::error_code& ec) {
  ssize_t n = 0;
  if (through_ring(false, fd_, buffer.data(), buffer.size(), static_cast<std::int64_t>(offset), n,
                   ec))
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  on_pool(
      [&] {
        do n = ::pread(fd_, buffer.data(), buffer.size(), static_cast<off_t>(offset));
        while (n < 0 && errno == EINTR);
        if (n < 0) ec = errno_code();
      },
      ec);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

std::size_t file::read_at(std::span<std::byte> buffer, std::uint64_t offset) {
  std::error_code ec;
  const std::size_t n = read_at(buffer, offset, ec);
  check(ec, "file::read_at", path_);
  return n;
}

std::size_t file::write_all(std::span<const std::byte> data, std::error_code& ec) {
  std::size_t done = 0;
  if (ring_write_fully(fd_, data, -1, done, ec)) return done;
  on_pool([&] { done = write_fully(fd_, data, -1, ec); }, ec);
  return done;
}

void file::write_all(std::span<const std::byte> data) {
  std::error_code ec;
  write_all(data, ec);
  check(ec, "file::write_all", path_);
}

std::size_t file::write_all_at(std::span<const std::byte> data, std::uint64_t offset,
                               std::error_code& ec) {
  std::size_t done = 0;
  if (ring_write_fully(fd_, data, static_cast<std::int64_t>(offset), done, ec)) return done;
  on_pool([&] { done = write_fully(fd_, data, static_cast<std::int64_t>(offset), ec); }, ec);
  return done;
}

void file::write_all_at(std::span<const std::byte> data, std::uint64_t offset) {
  std::error_code ec;
  write_all_at(data, offset, ec);
  check(ec, "file::write_all_at", path_);
}

struct stat file::stat() const {
  struct stat st {};
  std::error_code ec;
  on_pool(
      [&] {
        if (::fstat(fd_, &st) != 0) ec = errno_code();
      },
      ec);
  check(ec, "file::stat", path_);
  return st;
}

void file::sync() {
  std::error_code ec;
  on_pool(
      [&] {
        if (::fsync(fd_) != 0) ec = errno_code();
      },
      ec);
  check(ec, "file::sync", path_);
}

std::string read_file(const std::filesystem::path& path, std::error_code& ec) {
  std::string out;
  on_pool(
      [&] {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          ec = errno_code();
          return;
        }
        struct stat st {};
        if (::fstat(fd, &st) == 0 && st.st_size > 0)
          out.reserve(static_cast<std::size_t>(st.st_size));
        // Read to the end whatever the size said: files in /proc report 0, others grow.
        std::size_t used = 0;
        for (;;) {
          if (out.size() - used < 64 * 1024)
            out.resize(std::max<std::size_t>(out.size() * 2, used + 64 * 1024));
          const ssize_t n = ::read(fd, out.data() + used, out.size() - used);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            ec = errno_code();
            break;
          }
          if (n == 0) break;
          used += static_cast<std::size_t>(n);
        }
        ::close(fd);
        out.resize(ec ? 0 : used);
      },
      ec);
  if (ec) return {};
  return out;
}

std::string read_file(const std::filesystem::path& path) {
  std::error_code ec;
  std::string s = read_file(path, ec);
  check(ec, "read_file", path.string());
  return s;
}

void write_file(const std::filesystem::path& path, std::span<const std::byte> data,
                std::error_code& ec) {
  on_pool(
      [&] {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
          ec = errno_code();
          return;
        }
        write_fully(fd, data, -1, ec);
        if (::close(fd) != 0 && !ec) ec = errno_code();
      },
      ec);
}

void write_file(const std::filesystem::path& path, std::span<const std::byte> data) {
  std::error_code ec;
  write_file(path, data, ec);
  check(ec, "write_file", path.string());
}

struct stat stat(const std::filesystem::path& path, std::error_code& ec) {
  struct stat st {};
  on_pool(
      [&] {
        if (::stat(path.c_str(), &st) != 0) ec = errno_code();
      },
      ec);
  return st;
}

struct stat stat(const std::filesystem::path& path) {
  std::error_code ec;
  struct stat st = stat(path, ec);
  check(ec, "stat", path.string());
  return st;
}

}  // namespace weft::fs
