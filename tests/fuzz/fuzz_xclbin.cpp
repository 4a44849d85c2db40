// libFuzzer target: xclbin::parse on arbitrary bytes. Anything but a result or xclbin_error is
// a finding (the sanitizers catch memory errors; an abort marks a broken property).
// Properties checked on every input the reader accepts:
//  - the accessors and the info JSON work on it;
//  - writing it back succeeds and reading that again describes the same thing.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "fpyga/error.hpp"
#include "fpyga/xclbin.hpp"

namespace {

[[noreturn]] void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fpyga fuzz finding: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  fpyga::xclbin x;
  try {
    x = fpyga::xclbin::parse(bytes, "fuzz.xclbin");
  } catch (const fpyga::xclbin_error&) {
    return 0;
  }

  const std::string json = x.to_json();
  (void)x.target();
  (void)x.agfi();
  (void)x.platform_name();
  for (const auto& k : x.kernels) {
    (void)x.find_kernel(k.name);
    for (const auto& a : k.args) (void)fpyga::c_type::parse(a.type).storage_bytes();
  }
  for (const auto& ip : x.ips) {
    (void)ip.kernel_name();
    (void)ip.instance_name();
  }

  std::vector<std::byte> again;
  try {
    again = x.write();
  } catch (const std::exception& e) {
    finding("write() rejected a file parse() accepted", e.what());
  }
  try {
    const auto y = fpyga::xclbin::parse(again, "rewritten.xclbin");
    if (y.to_json() != json)
      finding("rewrite changed the description", json + "\n---\n" + y.to_json());
    if (y.bitstream != x.bitstream) finding("rewrite changed the bitstream", "");
    if (y.other_sections.size() != x.other_sections.size()) finding("rewrite lost sections", "");
  } catch (const fpyga::xclbin_error& e) {
    finding("parse() rejected what write() made", e.what());
  }
  return 0;
}
