// Reading a whole input file (an xclbin, a pack description, a BITSTREAM payload) into memory,
// after checking what it is: a directory, a device such as /dev/zero or /dev/urandom, a FIFO or
// a huge sparse file would otherwise be read until memory runs out, or forever.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fpyga/error.hpp"

namespace fpyga::detail {

/// The largest xclbin fpyga reads (real Alveo and F1 files are kilobytes to a few hundred MiB).
inline constexpr std::uint64_t max_xclbin_bytes = std::uint64_t(2) << 30;
/// The largest JSON description `pack` reads.
inline constexpr std::uint64_t max_description_bytes = std::uint64_t(64) << 20;

/// Reads the regular file at `path` (at most `limit` bytes). Throws fpyga::error naming `what`
/// and the path when it cannot be opened or read, value_error when it is not a regular file or
/// is larger than `limit`.
inline std::vector<std::byte> read_file(const std::string& path, std::string_view what,
                                        std::uint64_t limit) {
  const std::string label = std::string(what) + " '" + path + "'";
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw error("cannot open " + label + ": " + std::strerror(errno));
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw error("cannot read " + label + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    throw value_error("cannot read " + label + ": it is " + kind + ", not a regular file");
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > limit)
    throw value_error("cannot read " + label + ": it is " + std::to_string(size) +
                      " bytes, more than the " + std::to_string(limit) + "-byte limit");
  std::vector<std::byte> bytes(static_cast<std::size_t>(size));
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw error("cannot read " + label + ": " + std::strerror(errno));
    if (n == 0)
      throw error("cannot read " + label + ": it shrank from " + std::to_string(size) + " to " +
                  std::to_string(got) + " bytes while being read");
    got += static_cast<std::size_t>(n);
  }
  return bytes;
}

}  // namespace fpyga::detail
