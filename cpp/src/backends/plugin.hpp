// Backends as plugins: the XRT and OpenCL backends are shared modules
// (libfpyga_backend_<name>.so) that libfpyga loads with dlopen at the first device discovery, so
// that libfpyga itself needs no vendor library. A module whose vendor library (libxrt_coreutil,
// the OpenCL ICD loader) cannot be loaded simply fails to load: that backend is then "not
// available", with the loader's reason, and the others work (as XRT loads its shims and the ICD
// loader its drivers).
//
// A plugin is C++ over backend.hpp's classes, so it must come from the same fpyga build as the
// library that loads it: the descriptor carries plugin_abi, checked before anything else is used.
#pragma once

#include <cstdint>

#include "backends/backend.hpp"

namespace fpyga::backend {

/// Identifies the fpyga build a plugin was compiled against (fpyga's version, the backend
/// interface's revision and the compiler). FPYGA_PLUGIN_ABI_VERSION comes from CMake.
inline constexpr const char* plugin_abi = "fpyga " FPYGA_PLUGIN_ABI_VERSION " backend-abi 1 " __VERSION__;

/// What a plugin exports, under the C name fpyga_backend_plugin.
struct plugin_descriptor {
  const char* abi;  ///< plugin_abi as the plugin saw it
  backend_entry (*entry)();
};

using plugin_function = const plugin_descriptor* (*)();

/// The file name of backend `name`'s plugin: libfpyga_backend_<name>.so.
inline std::string plugin_file_name(std::string_view name) {
  return "libfpyga_backend_" + std::string(name) + ".so";
}

}  // namespace fpyga::backend

/// Defines the plugin's one exported entry point, returning `entry_function`'s backend.
#define FPYGA_BACKEND_PLUGIN(entry_function)                                                    \
  extern "C" __attribute__((visibility("default"))) const ::fpyga::backend::plugin_descriptor* \
  fpyga_backend_plugin() {                                                                       \
    static const ::fpyga::backend::plugin_descriptor descriptor{::fpyga::backend::plugin_abi,    \
                                                                &(entry_function)};              \
    return &descriptor;                                                                          \
  }
