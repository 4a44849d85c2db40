// libFuzzer target: the `fpyga xclbin pack` JSON description. Any input ends in an xclbin or a
// value_error; an accepted description must give bytes the reader accepts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "fpyga/error.hpp"
#include "fpyga/xclbin.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  fpyga::xclbin x;
  try {
    x = fpyga::xclbin::from_description(text);
  } catch (const fpyga::value_error&) {
    return 0;
  }
  try {
    const auto y = fpyga::xclbin::parse(x.write(), "packed.xclbin");
    (void)y.to_json();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fpyga fuzz finding: packed description does not read back: %s\n",
                 e.what());
    std::abort();
  }
  return 0;
}
