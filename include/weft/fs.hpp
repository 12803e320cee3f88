// weft::fs: files for green threads. The kernel reports a regular file as always ready, so a
// netpoller cannot wait on one; every call here runs on the blocking pool (weft/blocking.hpp)
// instead, as Go's os package and tokio::fs do, and only the calling green thread waits.
//
//   weft::fs::write_file("out.bin", bytes);
//   std::string text = weft::fs::read_file("config.toml");
//   auto f = weft::fs::file::open("log.txt", {.write = true, .create = true, .append = true});
//   f.write_all("started\n");
//
// Errors are std::system_error (the path in the message) with std::error_code overloads that do
// not throw. A call already running on the pool is not interrupted by cancellation: the caller
// waits for it, then throws weft::cancelled (weft/cancel.hpp). From a plain OS thread the calls
// simply run there.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace weft::fs {

// How to open a file (Rust's OpenOptions): read only by default.
struct open_options {
  bool read = true;
  bool write = false;
  bool create = false;     // create it if missing (with `permissions`)
  bool truncate = false;   // empty it
  bool append = false;     // every write goes to the end
  bool exclusive = false;  // with create: fail with errc::file_exists if it exists
  unsigned permissions = 0644;
};

// An open file. Move-only; the destructor closes it (on the calling thread: close(2) of a
// regular file does not wait for the disk).
class file {
 public:
  file() = default;
  file(file&& other) noexcept;
  file& operator=(file&& other) noexcept;
  file(const file&) = delete;
  file& operator=(const file&) = delete;
  ~file();

  static file open(const std::filesystem::path& path, const open_options& opts = {});
  static file open(const std::filesystem::path& path, const open_options& opts,
                   std::error_code& ec);
  // Write-only, created or truncated.
  static file create(const std::filesystem::path& path);

  // Reads up to buffer.size() bytes at the current position; 0 at end of file.
  std::size_t read(std::span<std::byte> buffer);
  std::size_t read(std::span<std::byte> buffer, std::error_code& ec);
  // The same at `offset`, leaving the position alone (pread); several green threads may do so
  // at once.
  std::size_t read_at(std::span<std::byte> buffer, std::uint64_t offset);
  std::size_t read_at(std::span<std::byte> buffer, std::uint64_t offset, std::error_code& ec);
  // Writes every byte at the current position (or the end, when appending).
  void write_all(std::span<const std::byte> data);
  std::size_t write_all(std::span<const std::byte> data, std::error_code& ec);
  void write_all(std::string_view text) { write_all(std::as_bytes(std::span(text))); }
  void write_all_at(std::span<const std::byte> data, std::uint64_t offset);
  std::size_t write_all_at(std::span<const std::byte> data, std::uint64_t offset,
                           std::error_code& ec);

  struct stat stat() const;
  std::uint64_t size() const { return static_cast<std::uint64_t>(stat().st_size); }
  // fsync(2): the data and metadata are on the disk when it returns.
  void sync();
  void close() noexcept;
  bool is_open() const noexcept { return fd_ >= 0; }
  int native_handle() const noexcept { return fd_; }

 private:
  explicit file(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;  // for error messages
};

// The whole file as bytes (its size read once, then read to the end).
std::string read_file(const std::filesystem::path& path);
std::string read_file(const std::filesystem::path& path, std::error_code& ec);
// Creates or truncates `path` and writes `data` to it.
void write_file(const std::filesystem::path& path, std::span<const std::byte> data);
void write_file(const std::filesystem::path& path, std::span<const std::byte> data,
                std::error_code& ec);
inline void write_file(const std::filesystem::path& path, std::string_view text) {
  write_file(path, std::as_bytes(std::span(text)));
}
// stat(2) of `path` (following symbolic links).
struct stat stat(const std::filesystem::path& path);
struct stat stat(const std::filesystem::path& path, std::error_code& ec);

}  // namespace weft::fs
