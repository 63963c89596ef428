// precis/io/mapped_file.hpp — a read-only memory mapping of a whole file (POSIX mmap).
//
// Checkpoints are tens to hundreds of GiB; reading them into heap buffers doubles peak memory
// and pays a copy for every weight. A read-only, private mapping lets `load<D>` hand out
// zero-copy views whose pages the kernel faults in on first touch and can drop under pressure.
//
// MappedFile is move-only: exactly one object unmaps a mapping. An empty file is valid and maps
// to an empty span (mmap of length 0 is EINVAL, so nothing is mapped). Failures throw
// precis::io_error naming the path, the failing call and strerror(errno).
#pragma once

#include <cerrno>       // errno
#include <cstddef>      // std::byte, std::size_t
#include <cstring>      // std::strerror
#include <filesystem>   // std::filesystem::path
#include <span>         // std::span
#include <string>       // std::string
#include <utility>      // std::exchange, std::move

#include <fcntl.h>      // ::open, O_RDONLY, O_CLOEXEC
#include <sys/mman.h>   // ::mmap, ::munmap, PROT_READ, MAP_PRIVATE
#include <sys/stat.h>   // ::fstat, struct stat, S_ISREG
#include <unistd.h>     // ::close

#include <precis/core/error.hpp>  // precis::io_error, precis::fail

namespace precis::io {

class MappedFile {
 public:
  MappedFile() = default;

  /// Maps `path` read-only. Throws io_error if the file cannot be opened, is not a regular
  /// file, or cannot be mapped.
  [[nodiscard]] static MappedFile open(const std::filesystem::path& path) {
    MappedFile f;
    f.path_ = path;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_errno(path, "open");
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      fail_errno(path, "fstat", err);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      fail<io_error>("[MappedFile] '", path.string(), "': not a regular file");
    }
    f.size_ = static_cast<std::size_t>(st.st_size);
    if (f.size_ > 0) {
      void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        fail_errno(path, "mmap", err);
      }
      f.data_ = p;
    }
    ::close(fd);  // the mapping keeps its own reference to the file
    return f;
  }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept
      : path_(std::move(o.path_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MappedFile& operator=(MappedFile&& o) noexcept {
    if (this != &o) {
      release();
      path_ = std::move(o.path_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~MappedFile() { release(); }

  /// The file's bytes; empty for an empty file or a moved-from object.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept {
    return {static_cast<const std::byte*>(data_), size_};
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  [[noreturn]] static void fail_errno(const std::filesystem::path& path, const char* call, int err = errno) {
    fail<io_error>("[MappedFile] '", path.string(), "': ", call, " failed: ", std::strerror(err));
  }

  void release() noexcept {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }

  std::filesystem::path path_;
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace precis::io
