// libFuzzer target: the XRT backend's path from metadata to kernels, on XRT's noop shim. Each
// input the reader accepts is loaded on xrt:0 (XRT parses it again), every kernel is opened
// (xrt::kernel reads IP_LAYOUT, CONNECTIVITY and the XML arguments) and a buffer is allocated for
// each global argument in its bank. Any fpyga::error is a clean refusal; anything else escaping,
// or a crash inside XRT, is a finding (issue 18 item 4 was one: CONNECTIVITY arg_index 9999).
// Seeds: the real awsxclbin and the project's xclbins.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>

#include "fpyga/fpyga.hpp"

namespace {

[[noreturn]] void finding(const char* what, const char* detail) {
  std::fprintf(stderr, "fpyga fuzz finding: %s: %s\n", what, detail);
  std::abort();
}

const std::string& scratch() {
  static const std::string path = [] {
    setenv("XCL_EMULATION_MODE", "noop", 1);  // before anything touches XRT
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp && *tmp ? tmp : "/tmp") + "/fpyga-fuzz-xrt-" +
           std::to_string(::getpid()) + ".xclbin";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)scratch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  fpyga::xclbin x;
  try {
    x = fpyga::xclbin::parse(bytes, "fuzz.xclbin");
  } catch (const fpyga::xclbin_error&) {
    return 0;  // the reader's refusals are fuzz_xclbin's business
  }
  {
    std::ofstream out(scratch(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    static auto dev = fpyga::device::open("xrt:0");
    fpyga::overlay ol(dev, scratch());
    for (const auto& k : x.kernels) {
      try {
        auto kernel = ol.kernel(k.name);
        for (std::size_t i = 0; i < kernel.args().size(); ++i)
          if (kernel.args()[i].kind == fpyga::arg_kind::global) {
            try {
              fpyga::buffer b(kernel, static_cast<unsigned>(i), 4096);
            } catch (const fpyga::error&) {
            }
          }
      } catch (const fpyga::error&) {
      }
    }
  } catch (const fpyga::error&) {
  } catch (const std::exception& e) {
    finding("a non-fpyga exception escaped", e.what());
  }
  return 0;
}
