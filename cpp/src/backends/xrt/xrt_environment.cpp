// Makes XRT usable in Debian's layout with nothing for the user to do.
//
// XRT loads its device shim as $XILINX_XRT/lib/lib<shim>.so.2 and throws "XILINX_XRT not set"
// without the variable. Xilinx's and AWS's installs (/opt/xilinx/xrt) keep the shims in `lib`, so
// the install prefix works; Debian keeps them in the multiarch directory
// (/usr/lib/x86_64-linux-gnu), which no prefix/lib names. So, before XRT's first call, when
// XILINX_XRT is unset, fpyga finds the directory holding libxrt_coreutil (the library this process
// already loaded) and sets XILINX_XRT to its parent when that directory is called `lib`, otherwise
// to a per-user directory whose `lib` is a link to it. That directory is one stable place,
// `$TMPDIR/fpyga-xrt-<uid>`, made once and reused by every later process of the user (a process
// killed before its exit handlers ran used to leave a directory of its own behind).
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>

#include "backends/xrt/xrt_backend.hpp"

namespace fpyga::backend::xrtb {
namespace {

namespace fs = std::filesystem;

// The directory holding the libxrt_coreutil this process uses ("" if it cannot be told).
std::string coreutil_directory() {
  void* handle = dlopen("libxrt_coreutil.so.2", RTLD_LAZY | RTLD_NOLOAD);
  if (!handle) return {};
  void* sym = dlsym(handle, "xrtDeviceOpen");
  Dl_info info{};
  std::string dir;
  if (sym && dladdr(sym, &info) && info.dli_fname) {
    std::error_code ec;
    fs::path lib = fs::canonical(info.dli_fname, ec);
    if (!ec) dir = lib.parent_path().string();
  }
  dlclose(handle);
  return dir;
}

// Makes (or reuses) $TMPDIR/fpyga-xrt-<uid> with `lib` linking to `libdir`. The directory is
// trusted only when it is a real directory (not a link), owned by this user and writable by no
// one else: XRT loads its shim from there, so another user must not be able to plant one.
std::string user_root(const fs::path& libdir, std::string& root) {
  const char* tmp = std::getenv("TMPDIR");
  root = std::string(tmp && *tmp ? tmp : "/tmp") + "/fpyga-xrt-" + std::to_string(::geteuid());
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST)
    return "cannot create " + root + " for XILINX_XRT: " + std::strerror(errno);
  struct stat st {};
  if (::lstat(root.c_str(), &st) != 0)
    return "cannot inspect " + root + " for XILINX_XRT: " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
    return root + " (for XILINX_XRT) is not a directory of this user's that only it can write; "
                  "remove it or set XILINX_XRT to your XRT install";
  const fs::path link = fs::path(root) / "lib";
  std::error_code ec;
  if (fs::is_symlink(link, ec) && fs::read_symlink(link, ec) == libdir && !ec) return {};
  // Missing or stale (another XRT install): replaced in one rename, so a process starting at the
  // same time sees either link, never none.
  const fs::path fresh = fs::path(root) / ("lib." + std::to_string(::getpid()));
  fs::remove(fresh, ec);
  fs::create_directory_symlink(libdir, fresh, ec);
  if (ec) return "cannot link " + libdir.string() + " for XILINX_XRT: " + ec.message();
  fs::rename(fresh, link, ec);
  if (ec) {
    fs::remove(fresh, ec);
    return "cannot link " + libdir.string() + " as " + link.string() + " for XILINX_XRT";
  }
  return {};
}

std::string prepare() {
  const char* mode = std::getenv("XCL_EMULATION_MODE");
  const std::string emulation = mode ? mode : "";
  // XRT's sw_emu/hw_emu shims fork Vitis's device model and exit the host process when it is
  // missing: refuse rather than let XRT kill the caller.
  if ((emulation == "sw_emu" || emulation == "hw_emu") && !std::getenv("XILINX_VITIS"))
    return "XCL_EMULATION_MODE=" + emulation +
           " needs a Vitis install (XILINX_VITIS is unset); fpyga's emu device runs sw_emu "
           "xclbins without one";
  if (const char* x = std::getenv("XILINX_XRT"); x && *x) return {};

  const std::string dir = coreutil_directory();
  if (dir.empty()) return "cannot locate libxrt_coreutil to set XILINX_XRT; set it to your XRT install";
  const fs::path libdir(dir);
  if (libdir.filename() == "lib") {
    setenv("XILINX_XRT", libdir.parent_path().c_str(), 0);
    return {};
  }
  std::string root;
  if (std::string why = user_root(libdir, root); !why.empty()) return why;
  setenv("XILINX_XRT", root.c_str(), 0);
  return {};
}

}  // namespace

const std::string& prepare_environment() {
  static std::once_flag once;
  static std::string why;
  std::call_once(once, [] { why = prepare(); });
  return why;
}

bool noop_mode() {
  const char* mode = std::getenv("XCL_EMULATION_MODE");
  return mode && std::string_view(mode) == "noop";
}

}  // namespace fpyga::backend::xrtb
