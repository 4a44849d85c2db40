// Makes XRT usable in Debian's layout with nothing for the user to do.
//
// XRT loads its device shim as $XILINX_XRT/lib/lib<shim>.so.2 and throws "XILINX_XRT not set"
// without the variable. Xilinx's and AWS's installs (/opt/xilinx/xrt) keep the shims in `lib`, so
// the install prefix works; Debian keeps them in the multiarch directory
// (/usr/lib/x86_64-linux-gnu), which no prefix/lib names. So, before XRT's first call, when
// XILINX_XRT is unset, fpyga finds the directory holding libxrt_coreutil (the library this process
// already loaded) and sets XILINX_XRT to its parent when that directory is called `lib`, otherwise
// to a private directory whose `lib` is a link to it (removed at exit).
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>

#include "backends/xrt/xrt_backend.hpp"

namespace fpyga::backend::xrtb {
namespace {

namespace fs = std::filesystem;

std::string private_root;  // the directory we made, removed at exit

void remove_private_root() {
  std::error_code ec;
  if (!private_root.empty()) fs::remove_all(private_root, ec);
}

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
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/fpyga-xrt-XXXXXX";
  if (!mkdtemp(templ.data())) return "cannot create a directory for XILINX_XRT under " + templ;
  std::error_code ec;
  fs::create_directory_symlink(libdir, fs::path(templ) / "lib", ec);
  if (ec) {
    fs::remove_all(templ, ec);
    return "cannot link " + dir + " for XILINX_XRT: " + ec.message();
  }
  private_root = templ;
  std::atexit(remove_private_root);
  setenv("XILINX_XRT", templ.c_str(), 0);
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
