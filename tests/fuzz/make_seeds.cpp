// Writes the fuzz seed corpus with fpyga's own writer: xclbins of each flavour the reader
// handles (sw_emu with an ELF payload, awsxclbin-style image id, old-style names and HOST memory,
// unknown sections, empty) and the JSON descriptions they came from.
// Usage: fpyga_fuzz_seeds XCLBIN_DIR DESCRIPTION_DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fpyga/xclbin.hpp"

namespace {

const char* const descriptions[] = {
    R"({"mode": "sw_emu", "platform": "xilinx_aws-vu9p-f1_shell-v04261818_201920_2",
  "clocks": [{"name": "DATA_CLK", "frequency_mhz": 300, "type": "data"},
             {"name": "KERNEL_CLK", "frequency_mhz": 500, "type": "kernel"}],
  "memories": [{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": 17179869184},
               {"tag": "bank1", "type": "ddr4", "used": false, "base_address": 17179869184, "size_bytes": 17179869184}],
  "kernels": [{"name": "vadd", "language": "c++",
    "args": [{"name": "in1", "type": "unsigned int const *", "kind": "global"},
             {"name": "in2", "type": "unsigned int const *", "kind": "global"},
             {"name": "out_r", "type": "unsigned int*", "kind": "global"},
             {"name": "size", "type": "int", "kind": "scalar"}],
    "instances": [{"name": "vadd_1", "base_address": 25165824, "control": "ap_ctrl_hs",
                   "connections": {"in1": "bank0", "in2": "bank0", "out_r": "bank0"}},
                  {"name": "vadd_2", "base_address": 25231360, "control": "ap_ctrl_chain",
                   "connections": {"in1": "bank1", "in2": "bank1", "out_r": "bank1"}}]}]})",
    R"({"mode": "pr", "uuid": "c1087066d39e48c8917a719a3e2e28aa",
  "clocks": [{"name": "clk_main_a0", "frequency_mhz": 250, "type": "system"}],
  "memories": [{"tag": "bank0", "used": true}, {"tag": "bank1"}, {"tag": "bank2"}, {"tag": "bank3"}],
  "kernels": [{"name": "vector_add", "language": "clc",
    "args": [{"name": "c", "type": "int*"}, {"name": "a", "type": "int*"}, {"name": "b", "type": "int*"},
             {"name": "n_elements", "type": "int"}],
    "instances": [{"name": "vector_add_1", "base_address": 0,
                   "connections": {"a": "bank0", "b": "bank0", "c": "bank0"}}]}]})",
    R"({"kernels": [{"name": "myproject",
    "args": [{"name": "x", "type": "ap_fixed<16,6> const *"}, {"name": "y", "type": "ap_fixed<16,6>*"},
             {"name": "s", "type": "hls::stream<ap_uint<512> >&", "kind": "stream"},
             {"name": "k", "type": "ap_fixed<32, 14, AP_RND, AP_SAT, 0>", "size": 4}]}],
  "memories": [{"tag": "HBM[0]", "type": "hbm", "size_bytes": 268435456},
               {"tag": "HOST[0]", "type": "host", "size_bytes": 1048576}]})",
    R"({})",
};

void put(const std::filesystem::path& p, const void* data, std::size_t n) {
  std::ofstream out(p, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

std::vector<std::byte> text(const std::string& s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return std::vector<std::byte>(p, p + s.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s XCLBIN_DIR DESCRIPTION_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path xdir = argv[1], ddir = argv[2];
  std::filesystem::create_directories(xdir);
  std::filesystem::create_directories(ddir);
  const std::vector<std::vector<std::byte>> payloads = {
      text(std::string("\x7f"
                       "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0",
                       16)),
      text("agfi-046565baf5ce48c86"),
      text("afi-0123456789abcdef0"),
      {}};
  int n = 0;
  for (std::size_t i = 0; i < std::size(descriptions); ++i) {
    put(ddir / ("desc" + std::to_string(i) + ".json"), descriptions[i],
        std::string(descriptions[i]).size());
    auto x = fpyga::xclbin::from_description(descriptions[i], payloads[i % payloads.size()]);
    const auto b = x.write();
    put(xdir / ("seed" + std::to_string(n++) + ".xclbin"), b.data(), b.size());
  }
  // Old-style: IP names without ":instance", a null uuid, HOST memory, unknown sections.
  fpyga::xclbin old = fpyga::xclbin::from_description(descriptions[1], payloads[1]);
  old.uuid = {};
  for (auto& ip : old.ips) ip.name = ip.kernel_name();
  old.memories.push_back({4, fpyga::memory_type::host, true, 0, 1024, "HOST[0]"});
  old.other_sections.push_back({fpyga::section_kind::keyvalue_metadata, "kv", text("{\"a\": 1}")});
  old.other_sections.push_back({static_cast<fpyga::section_kind>(77), "future", text("opaque")});
  old.build_metadata = "{\"build_metadata\": {\"xclbin\": {}}}";
  const auto b = old.write();
  put(xdir / ("seed" + std::to_string(n++) + ".xclbin"), b.data(), b.size());
  std::printf("wrote %d xclbin seeds to %s and %zu descriptions to %s\n", n, xdir.c_str(),
              std::size(descriptions), ddir.c_str());
  return 0;
}
