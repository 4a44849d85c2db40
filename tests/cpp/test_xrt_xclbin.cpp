// XRT's own xclbin parser (xrt::xclbin from libxrt_coreutil) as the referee: it must find in
// what fpyga's writer produces, and in the real awsxclbin, exactly what fpyga's reader finds.
#include <experimental/xrt_xclbin.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "fpyga/xclbin.hpp"
#include "test_support.hpp"

namespace {

const char* const description = R"({
  "mode": "sw_emu",
  "platform": "xilinx_aws-vu9p-f1_shell-v04261818_201920_2",
  "clocks": [{"name": "DATA_CLK", "frequency_mhz": 250, "type": "data"}],
  "memories": [{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": 17179869184},
               {"tag": "bank1", "type": "ddr4", "used": true, "base_address": 17179869184, "size_bytes": 17179869184},
               {"tag": "bank2", "type": "ddr4", "used": false, "base_address": 34359738368, "size_bytes": 17179869184}],
  "kernels": [{
    "name": "vadd", "language": "c++",
    "args": [{"name": "in1", "type": "unsigned int const *", "kind": "global"},
             {"name": "in2", "type": "unsigned int const *", "kind": "global"},
             {"name": "out_r", "type": "unsigned int*", "kind": "global"},
             {"name": "size", "type": "int", "kind": "scalar"}],
    "instances": [{"name": "vadd_1", "base_address": 25165824, "control": "ap_ctrl_hs",
                   "connections": {"in1": "bank0", "in2": "bank0", "out_r": "bank1"}},
                  {"name": "vadd_2", "base_address": 25231360, "control": "ap_ctrl_chain",
                   "connections": {"in1": "bank1", "in2": "bank1", "out_r": "bank1"}}]
  }, {
    "name": "myproject", "language": "c++",
    "args": [{"name": "x", "type": "ap_fixed<16,6> const *"}, {"name": "y", "type": "ap_fixed<16,6>*"},
             {"name": "n", "type": "unsigned int"}],
    "instances": [{"name": "myproject_1", "base_address": 25296896,
                   "connections": {"x": "bank1", "y": "bank1"}}]
  }]
})";

std::string xrt_target(xrt::xclbin::target_type t) {
  switch (t) {
    case xrt::xclbin::target_type::hw:
      return "hw";
    case xrt::xclbin::target_type::sw_emu:
      return "sw_emu";
    case xrt::xclbin::target_type::hw_emu:
      return "hw_emu";
  }
  return "?";
}

/// Compares everything both parsers expose.
void same_view(const std::vector<std::byte>& bytes) {
  const auto ours = fpyga::xclbin::parse(bytes);
  const std::vector<char> chars(reinterpret_cast<const char*>(bytes.data()),
                                reinterpret_cast<const char*>(bytes.data()) + bytes.size());
  const xrt::xclbin theirs(chars);

  EXPECT_EQ(theirs.get_uuid().to_string(), ours.uuid_string());
  EXPECT_EQ(theirs.get_xsa_name(), ours.platform_vbnv);
  EXPECT_EQ(xrt_target(theirs.get_target_type()), ours.target());

  const auto mems = theirs.get_mems();
  ASSERT_EQ(mems.size(), ours.memories.size());
  for (std::size_t i = 0; i < mems.size(); ++i) {
    SCOPED_TRACE("memory " + std::to_string(i));
    EXPECT_EQ(mems[i].get_index(), static_cast<int32_t>(ours.memories[i].index));
    EXPECT_EQ(mems[i].get_tag(), ours.memories[i].tag);
    EXPECT_EQ(mems[i].get_base_address(), ours.memories[i].base_address);
    EXPECT_EQ(mems[i].get_size_kb() * 1024, ours.memories[i].size_bytes);
    EXPECT_EQ(mems[i].get_used(), ours.memories[i].used);
    EXPECT_EQ(static_cast<int>(mems[i].get_type()), static_cast<int>(ours.memories[i].type));
  }

  const auto kernels = theirs.get_kernels();
  ASSERT_EQ(kernels.size(), ours.kernels.size());
  for (const auto& k : kernels) {
    SCOPED_TRACE("kernel " + k.get_name());
    const auto* ok = ours.find_kernel(k.get_name());
    ASSERT_NE(ok, nullptr);
    const auto args = k.get_args();
    ASSERT_EQ(args.size(), ok->args.size());
    for (std::size_t i = 0; i < args.size(); ++i) {
      SCOPED_TRACE("arg " + args[i].get_name());
      EXPECT_EQ(args[i].get_name(), ok->args[i].name);
      EXPECT_EQ(args[i].get_index(), ok->args[i].index);
      EXPECT_EQ(args[i].get_offset(), ok->args[i].offset);
      EXPECT_EQ(args[i].get_size(), ok->args[i].size);
      EXPECT_EQ(args[i].get_port(), ok->args[i].port);
      EXPECT_EQ(args[i].get_host_type(), ok->args[i].type);
    }
    const auto cus = k.get_cus();
    std::vector<const fpyga::ip_info*> our_cus;
    for (const auto& ip : ours.ips)
      if (ip.type == fpyga::ip_type::kernel && ip.kernel_name() == ok->name) our_cus.push_back(&ip);
    ASSERT_EQ(cus.size(), our_cus.size());
    for (std::size_t c = 0; c < cus.size(); ++c) {
      SCOPED_TRACE("cu " + cus[c].get_name());
      const auto it = std::find_if(our_cus.begin(), our_cus.end(), [&](const fpyga::ip_info* ip) {
        return ip->name == cus[c].get_name();
      });
      ASSERT_NE(it, our_cus.end());
      const auto& ip = **it;
      EXPECT_EQ(cus[c].get_base_address(), ip.base_address);
      EXPECT_EQ(static_cast<int>(cus[c].get_control_type()), static_cast<int>(ip.control));
      // Connectivity: the memories each argument of this CU reaches.
      const auto cu_args = cus[c].get_args();
      ASSERT_EQ(cu_args.size(), ok->args.size());
      for (const auto& a : cu_args) {
        std::vector<unsigned> theirs_mems;
        for (const auto& m : a.get_mems())
          theirs_mems.push_back(static_cast<unsigned>(m.get_index()));
        std::sort(theirs_mems.begin(), theirs_mems.end());
        auto ours_mems = ours.memories_of(ip.index, static_cast<unsigned>(a.get_index()));
        std::sort(ours_mems.begin(), ours_mems.end());
        EXPECT_EQ(theirs_mems, ours_mems) << "arg " << a.get_name();
      }
    }
  }
}

}  // namespace

TEST(xrt_xclbin, writer_output_reads_the_same_in_xrt) {
  const auto x = fpyga::xclbin::from_description(description);
  ASSERT_EQ(x.connectivity.size(), 8u);  // guards against an empty comparison
  same_view(x.write());
}

TEST(xrt_xclbin, flat_file_with_a_null_uuid) {
  auto x = fpyga::xclbin::from_description(description);
  x.mode = fpyga::xclbin_mode::flat;
  x.uuid = {};
  same_view(x.write());
}

TEST(xrt_xclbin, real_awsxclbin_reads_the_same_in_xrt) {
  FPYGA_REQUIRE_FILE(path,
                     fpyga::test::shared_xclbin_dir() / "aws_vector_addition_2018_3.awsxclbin");
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  same_view(b);
  // And the rewrite of it.
  same_view(fpyga::xclbin::parse(b).write());
}
