// The network description of an xclbin (pack, read, errors) and fpyga::nn_model on the emulated
// device: the project's mlp.xclbin (an hls4ml-style MLP on hls4ml's nnet_utils, Xilinx's
// ap_fixed) against an independent reference computed here from mlp_weights.json, one and two
// compute units, one and two devices, raw containers and the conversions alone, NaN/inf and the
// errors.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "fpyga/fpyga.hpp"
#include "test_support.hpp"

namespace {

// Two emulated devices, set before fpyga enumerates them.
const int two_emu_devices = [] {
  ::setenv("FPYGA_EMU_DEVICES", "2", 1);
  ::unsetenv("FPYGA_DEVICE");
  return 0;
}();

namespace fs = std::filesystem;
using nlohmann::json;

// A description with the fpyga_batch kernel pair and `network` (a JSON object).
json description(const json& network) {
  json d = json::parse(R"({
    "mode": "sw_emu",
    "memories": [{"tag": "bank0"}],
    "kernels": [
      {"name": "nn", "args": [{"name": "in", "type": "ap_fixed<16, 6> const *"},
                              {"name": "out", "type": "ap_fixed<16, 6>*"}],
       "instances": [{"name": "nn_1", "connections": {"in": "bank0", "out": "bank0"}}]},
      {"name": "nn_batch", "args": [{"name": "in", "type": "ap_fixed<16, 6> const *"},
                                    {"name": "out", "type": "ap_fixed<16, 6>*"},
                                    {"name": "n", "type": "int"}],
       "instances": [{"name": "nn_batch_1", "connections": {"in": "bank0", "out": "bank0"}},
                     {"name": "nn_batch_2", "connections": {"in": "bank0", "out": "bank0"}}]},
      {"name": "krnl_rtl", "args": [{"name": "in", "type": "float*"},
                                    {"name": "out", "type": "float*"},
                                    {"name": "in_size", "type": "int"},
                                    {"name": "out_size", "type": "int"}]}
    ]})");
  if (!network.is_null()) d["network"] = network;
  return d;
}

json muon_network() {
  return json::parse(R"({
    "schema": "fpyga.network/1", "name": "muon", "producer": "hls4ml", "producer_version": "1.3.0",
    "io_type": "io_parallel", "interface": "fpyga_batch",
    "kernels": {"single": "nn", "batch": "nn_batch"},
    "inputs": [{"name": "input_1", "shape": [27], "type": "ap_fixed<16,6>"}],
    "outputs": [{"name": "layer14_out", "shape": [1], "type": "ap_fixed<16, 6>"}]})");
}

fpyga::xclbin pack(const json& desc) {
  return fpyga::xclbin::from_description(desc.dump());
}

// The value_error the description raises; "" when it packs.
std::string pack_error(const json& desc) {
  try {
    pack(desc);
  } catch (const fpyga::value_error& e) {
    return e.what();
  }
  return "";
}

TEST(NetworkSection, PackAndReadRoundTrip) {
  const auto x = pack(description(muon_network()));
  const auto bytes = x.write();
  const auto back = fpyga::xclbin::parse(bytes, "muon.xclbin");
  const auto net = fpyga::network_info::of(back);
  ASSERT_TRUE(net.has_value());
  EXPECT_EQ(net->name, "muon");
  EXPECT_EQ(net->producer, "hls4ml");
  EXPECT_EQ(net->producer_version, "1.3.0");
  EXPECT_EQ(net->io_type, "io_parallel");
  EXPECT_EQ(net->interface, fpyga::network_interface::fpyga_batch);
  EXPECT_EQ(net->single_kernel, "nn");
  EXPECT_EQ(net->batch_kernel, "nn_batch");
  ASSERT_EQ(net->inputs.size(), 1u);
  EXPECT_EQ(net->inputs[0].name, "input_1");
  EXPECT_EQ(net->inputs[0].shape, std::vector<std::size_t>{27});
  EXPECT_EQ(net->inputs[0].type, fpyga::ap_fixed_16_6());
  EXPECT_EQ(net->n_inputs(), 27u);
  EXPECT_EQ(net->n_outputs(), 1u);
  // The section as the format wants it: USER_METADATA named fpyga_network, UTF-8 JSON.
  bool found = false;
  for (const auto& s : back.sections)
    if (s.kind == fpyga::section_kind::user_metadata && s.name == "fpyga_network") found = true;
  EXPECT_TRUE(found);
  // Its JSON is canonical and reads back to the same description.
  EXPECT_EQ(fpyga::network_info::from_json(net->to_json()), *net);
  // The same description packs to the same bytes.
  EXPECT_EQ(pack(description(muon_network())).write(), bytes);
}

TEST(NetworkSection, InfoJsonShowsItAndNullWithout) {
  const auto with = fpyga::xclbin::parse(pack(description(muon_network())).write(), "a.xclbin");
  const auto j = json::parse(with.to_json());
  ASSERT_TRUE(j.contains("network"));
  EXPECT_EQ(j["network"]["schema"], "fpyga.network/1");
  EXPECT_EQ(j["network"]["inputs"][0]["shape"], json::array({27}));
  EXPECT_EQ(j["network"]["outputs"][0]["type"], "ap_fixed<16,6>");
  EXPECT_EQ(j["network"]["kernels"]["batch"], "nn_batch");

  const auto without = fpyga::xclbin::parse(pack(description(nullptr)).write(), "b.xclbin");
  EXPECT_FALSE(fpyga::network_info::of(without).has_value());
  const auto j2 = json::parse(without.to_json());
  ASSERT_TRUE(j2.contains("network"));
  EXPECT_TRUE(j2["network"].is_null());
}

TEST(NetworkSection, AxiInterfaceAndMultiDimensionalShapes) {
  json n = muon_network();
  n["interface"] = "hls4ml_axi";
  n["io_type"] = "io_stream";
  n["kernels"] = {{"axi", "krnl_rtl"}};
  n["inputs"][0]["shape"] = json::array({4, 4, 3});
  n["outputs"][0]["type"] = "ap_ufixed<8,0,AP_RND,AP_SAT>";
  const auto x = fpyga::xclbin::parse(pack(description(n)).write(), "axi.xclbin");
  const auto net = fpyga::network_info::of(x);
  ASSERT_TRUE(net);
  EXPECT_EQ(net->interface, fpyga::network_interface::hls4ml_axi);
  EXPECT_EQ(net->run_kernel(), "krnl_rtl");
  EXPECT_EQ(net->inputs[0].size(), 48u);
  EXPECT_EQ(net->outputs[0].type.to_string(), "ap_ufixed<8,0,AP_RND,AP_SAT,0>");
}

TEST(NetworkSection, MalformedDescriptionsNameTheField) {
  struct bad_case {
    const char* field;
    std::function<void(json&)> spoil;
  };
  const std::vector<bad_case> cases = {
      {"schema", [](json& n) { n["schema"] = "fpyga.network/9"; }},
      {"name", [](json& n) { n.erase("name"); }},
      {"io_type", [](json& n) { n["io_type"] = "io_serial"; }},
      {"interface", [](json& n) { n["interface"] = "pcie"; }},
      {"kernels.batch", [](json& n) { n["kernels"].erase("batch"); }},
      {"kernels.batch", [](json& n) { n["kernels"]["batch"] = "missing_kernel"; }},
      {"kernels.single", [](json& n) { n["kernels"]["single"] = "nn_batch"; }},  // 3 args, not 2
      {"kernels.batch", [](json& n) { n["kernels"]["batch"] = "nn"; }},          // 2 args, not 3
      {"kernels.axi",
       [](json& n) {
         n["interface"] = "hls4ml_axi";
         n["kernels"] = {{"axi", "nn_batch"}};
       }},
      {"inputs", [](json& n) { n["inputs"] = json::array(); }},
      {"inputs[0].shape",
       [](json& n) {
         n["inputs"][0]["shape"] = json::array({27, 0});
       }},
      {"inputs[0].shape", [](json& n) { n["inputs"][0]["shape"] = json::array({-3}); }},
      {"inputs[0].shape", [](json& n) { n["inputs"][0]["shape"] = "27"; }},
      {"outputs[0].type", [](json& n) { n["outputs"][0]["type"] = "float"; }},
      {"outputs[0].type", [](json& n) { n["outputs"][0]["type"] = "ap_fixed<99,6>"; }},
      {"outputs[0].name", [](json& n) { n["outputs"][0]["name"] = 3; }},
      {"inputs[0].dtype", [](json& n) { n["inputs"][0]["dtype"] = "f4"; }},
      {"extra", [](json& n) { n["extra"] = 1; }},
      // The kernel's ap_fixed<16,6> buffers cannot carry another type.
      {"kernels.batch", [](json& n) { n["inputs"][0]["type"] = "ap_fixed<18,8>"; }},
  };
  for (const auto& c : cases) {
    json n = muon_network();
    c.spoil(n);
    const std::string err = pack_error(description(n));
    EXPECT_NE(err.find(c.field), std::string::npos)
        << "spoiled " << c.field << ": " << n.dump() << "\n  error: '" << err << "'";
    EXPECT_NE(err.find("network description"), std::string::npos) << err;
  }
  EXPECT_NE(pack_error(description(json("not an object"))).find("expected an object"),
            std::string::npos);
}

// A file whose section is malformed (written by another tool): the reader names file and field.
TEST(NetworkSection, MalformedSectionInAFileNamesTheFileAndField) {
  auto x = pack(description(nullptr));
  json n = muon_network();
  n["outputs"][0]["shape"] = json::array({0});
  const std::string text = n.dump();
  const auto* p = reinterpret_cast<const std::byte*>(text.data());
  x.other_sections.push_back({fpyga::section_kind::user_metadata, "fpyga_network",
                              std::vector<std::byte>(p, p + text.size())});
  // Refused by the reader itself, so no later step (info --json, a host) meets it.
  try {
    fpyga::xclbin::parse(x.write(), "spoiled.xclbin");
    FAIL() << "a zero extent was accepted";
  } catch (const fpyga::xclbin_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("spoiled.xclbin"), std::string::npos) << m;
    EXPECT_NE(m.find("outputs[0].shape"), std::string::npos) << m;
  }

  // Not JSON at all.
  auto y = pack(description(nullptr));
  const std::string junk = "{\"schema\": ";
  const auto* q = reinterpret_cast<const std::byte*>(junk.data());
  y.other_sections.push_back({fpyga::section_kind::user_metadata, "fpyga_network",
                              std::vector<std::byte>(q, q + junk.size())});
  try {
    fpyga::network_info::of(fpyga::xclbin::parse(y.write(), "junk.xclbin"));
    FAIL() << "truncated JSON was accepted";
  } catch (const fpyga::xclbin_error& e) {
    EXPECT_NE(std::string(e.what()).find("junk.xclbin"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
}

// As a Vitis card build adds it (xclbinutil --add-section USER_METADATA:RAW:network.json): the
// section may carry another name; the schema string identifies it, other user metadata is ignored.
TEST(NetworkSection, FoundUnderAnotherSectionNameBySchema) {
  auto x = pack(description(nullptr));
  const auto add = [&](const std::string& name, const std::string& text) {
    const auto* p = reinterpret_cast<const std::byte*>(text.data());
    x.other_sections.push_back(
        {fpyga::section_kind::user_metadata, name, std::vector<std::byte>(p, p + text.size())});
  };
  add("notes", R"({"author": "someone"})");
  EXPECT_FALSE(fpyga::network_info::of(fpyga::xclbin::parse(x.write(), "n.xclbin")));
  add("", muon_network().dump());
  const auto net = fpyga::network_info::of(fpyga::xclbin::parse(x.write(), "v.xclbin"));
  ASSERT_TRUE(net);
  EXPECT_EQ(net->name, "muon");
  add("other", muon_network().dump());
  EXPECT_THROW(fpyga::network_info::of(fpyga::xclbin::parse(x.write(), "w.xclbin")),
               fpyga::xclbin_error);
}

// --- nn_model on the emulated device ----------------------------------------------------------

struct mlp_reference {
  json layers;

  // hls4ml's dense layers on ap_fixed<16,6> with accum_t ap_fixed<32,12>: exact 32-bit sums,
  // floor to 10 fractional bits, 16-bit wrap; ReLU between layers.
  std::int16_t operator()(const std::int16_t* x) const {
    std::vector<std::int16_t> a(x, x + 27);
    for (const auto& layer : layers) {
      const int n_in = layer["n_in"], n_out = layer["n_out"];
      const auto& w = layer["weights_raw"];
      const auto& b = layer["biases_raw"];
      std::vector<std::int16_t> y(n_out);
      for (int j = 0; j < n_out; ++j) {
        std::uint32_t acc = static_cast<std::uint32_t>(b[j].get<int>()) << 10;
        for (int i = 0; i < n_in; ++i)
          acc += static_cast<std::uint32_t>(static_cast<std::int32_t>(a[i]) *
                                            w[i * n_out + j].get<int>());
        auto v = static_cast<std::int16_t>(
            static_cast<std::uint16_t>((static_cast<std::int32_t>(acc) >> 10) & 0xFFFF));
        if (layer["activation"] == "relu" && v < 0) v = 0;
        y[j] = v;
      }
      a = std::move(y);
    }
    return a[0];
  }
};

// ap_fixed<16,6>(float) for finite floats, computed here independently of fpyga::to_fixed:
// floor(x * 2^10), wrapped to 16 bits (exact in double for every float).
std::int16_t raw_16_6(float x) {
  const double scaled = std::floor(static_cast<double>(x) * 1024.0);
  const auto wide = static_cast<std::int64_t>(std::fmod(scaled, 65536.0));
  return static_cast<std::int16_t>(static_cast<std::uint16_t>(wide & 0xFFFF));
}

// Inputs mostly within +-4, with every 17th value outside ap_fixed<16,6>'s +-32 (they wrap).
std::vector<float> inputs(std::size_t samples, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> in_range(-4.0f, 4.0f), wide(-100.0f, 100.0f);
  std::vector<float> x(samples * 27);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 17 == 5 ? wide(rng) : in_range(rng);
  return x;
}

class NnModelEmu : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto dir = fpyga::test::built_xclbin_dir();
    FPYGA_REQUIRE_FILE(weights, dir / "mlp_weights.json");
    FPYGA_REQUIRE_FILE(mlp, dir / "mlp.xclbin");
    FPYGA_REQUIRE_FILE(mlp2, dir / "mlp_2cu.xclbin");
    ref.layers = json::parse(std::ifstream(weights))["layers"];
    mlp_path = mlp.string();
    mlp_2cu_path = mlp2.string();
  }

  // The expected outputs (floats) of samples `x` under the reference.
  std::vector<float> expected(const std::vector<float>& x) const {
    std::vector<float> y(x.size() / 27);
    std::vector<std::int16_t> raw(27);
    for (std::size_t s = 0; s < y.size(); ++s) {
      for (int i = 0; i < 27; ++i) raw[i] = raw_16_6(x[s * 27 + i]);
      y[s] = static_cast<float>(ref(raw.data()) / 1024.0);
    }
    return y;
  }

  mlp_reference ref;
  std::string mlp_path, mlp_2cu_path;
};

TEST_F(NnModelEmu, MlpMatchesTheIndependentReference) {
  fpyga::nn_model m(mlp_path, {fpyga::device::open("emu")});
  EXPECT_EQ(m.n_inputs(), 27u);
  EXPECT_EQ(m.n_outputs(), 1u);
  EXPECT_EQ(m.compute_units(), 1u);
  EXPECT_EQ(m.info().name, "mlp");
  EXPECT_EQ(m.info().batch_kernel, "mlp_batch");
  EXPECT_EQ(m.raw_input_bytes(), 2u);
  ASSERT_EQ(m.devices().size(), 1u);
  EXPECT_EQ(m.devices()[0].spec(), "emu:0");

  const std::size_t n = 777;  // several chunks, the last one short
  const auto x = inputs(n, 1);
  std::vector<float> y(n, -12345.0f);
  m.predict(x.data(), n, y.data());
  const auto want = expected(x);
  int nonzero = 0;
  for (std::size_t s = 0; s < n; ++s) {
    ASSERT_EQ(y[s], want[s]) << "sample " << s;
    nonzero += want[s] != 0.0f;
  }
  EXPECT_GT(nonzero, static_cast<int>(n / 4)) << "a network that outputs only zeros checks nothing";

  // Buffers are reused: a second, smaller call gives the same results for the same samples.
  std::vector<float> y2(100);
  m.predict(x.data(), 100, y2.data());
  for (std::size_t s = 0; s < 100; ++s) ASSERT_EQ(y2[s], want[s]) << "sample " << s;
}

TEST_F(NnModelEmu, SingleSampleAndDoubleOverloadsAgree) {
  fpyga::nn_model m(mlp_path, {fpyga::device::open("emu")});
  const auto x = inputs(40, 2);
  const auto want = expected(x);
  for (std::size_t s = 0; s < 40; ++s) {
    float y = -1.0f;
    m.predict(x.data() + s * 27, 1, &y);
    ASSERT_EQ(y, want[s]) << "single sample " << s;
  }
  std::vector<double> xd(x.begin(), x.end());
  std::vector<double> yd(40);
  std::vector<float> yf(40);
  m.predict(xd.data(), 40, yd.data());
  m.predict(xd.data(), 40, yf.data());
  for (std::size_t s = 0; s < 40; ++s) {
    ASSERT_EQ(yd[s], static_cast<double>(want[s])) << s;
    ASSERT_EQ(yf[s], want[s]) << s;
  }
}

TEST_F(NnModelEmu, TwoComputeUnitsGiveTheSameBitsInInputOrder) {
  // One xclbin per device (as on a card): the two models on two emulated devices.
  fpyga::nn_model one(mlp_path, {fpyga::device::open("emu:0")});
  fpyga::nn_model two(mlp_2cu_path, {fpyga::device::open("emu:1")});
  EXPECT_EQ(two.compute_units(), 2u);
  const std::size_t n = 1001;
  const auto x = inputs(n, 3);
  const auto want = expected(x);
  std::vector<float> y1(n), y2(n);
  one.predict(x.data(), n, y1.data());
  for (std::size_t chunk : {0u, 7u, 64u, 1000u, 5000u}) {  // n is a multiple of none of them
    two.set_chunk_samples(chunk);
    std::fill(y2.begin(), y2.end(), -1.0f);
    two.predict(x.data(), n, y2.data());
    for (std::size_t s = 0; s < n; ++s) {
      ASSERT_EQ(y2[s], y1[s]) << "chunk " << chunk << " sample " << s;
      ASSERT_EQ(y2[s], want[s]) << "chunk " << chunk << " sample " << s;
    }
  }
}

TEST_F(NnModelEmu, TwoDevicesSplitTheBatch) {
  fpyga::nn_model m(mlp_2cu_path, {fpyga::device::open("emu:0"), fpyga::device::open("emu:1")});
  EXPECT_EQ(m.compute_units(), 4u);
  ASSERT_EQ(m.devices().size(), 2u);
  const std::size_t n = 500;
  const auto x = inputs(n, 4);
  const auto want = expected(x);
  std::vector<float> y(n);
  m.set_chunk_samples(13);
  m.predict(x.data(), n, y.data());
  for (std::size_t s = 0; s < n; ++s) ASSERT_EQ(y[s], want[s]) << "sample " << s;
}

TEST_F(NnModelEmu, PredictRawTakesTheKernelsContainers) {
  fpyga::nn_model m(mlp_2cu_path, {fpyga::device::open("emu")});
  const std::size_t n = 300;
  const auto x = inputs(n, 5);
  std::vector<std::int16_t> raw(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) raw[i] = raw_16_6(x[i]);
  std::vector<std::int16_t> y(n);
  m.set_chunk_samples(50);
  m.predict_raw(raw.data(), n, y.data());
  for (std::size_t s = 0; s < n; ++s) ASSERT_EQ(y[s], ref(raw.data() + s * 27)) << "sample " << s;
}

// The conversions alone (what a server runs on each request's thread) and predict_raw in turn
// give predict's bits, non-finite inputs included; they check their pointers as predict does.
TEST_F(NnModelEmu, ConversionsAloneAroundPredictRawGivePredictsBits) {
  fpyga::nn_model m(mlp_2cu_path, {fpyga::device::open("emu")});
  const std::size_t n = 257;
  auto x = inputs(n, 9);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[27 * 100 + 5] = -std::numeric_limits<float>::infinity();
  std::vector<float> direct(n);
  m.predict(x.data(), n, direct.data());

  std::vector<std::int16_t> raw_in(x.size(), 0x5a5a), raw_out(n, 0x5a5a);
  m.inputs_to_raw(x.data(), n, raw_in.data());
  std::vector<std::int16_t> expect(x.size());
  fpyga::to_fixed(x.data(), x.size(), expect.data(), 2, fpyga::ap_fixed_16_6(),
                  fpyga::nonfinite_policy::ap_fixed);
  ASSERT_EQ(raw_in, expect);
  m.predict_raw(raw_in.data(), n, raw_out.data());
  std::vector<float> via_raw(n, -1.0f);
  m.outputs_from_raw(raw_out.data(), n, via_raw.data());
  for (std::size_t s = 0; s < n; ++s)
    ASSERT_EQ(std::memcmp(&via_raw[s], &direct[s], sizeof(float)), 0)
        << "sample " << s << ": " << via_raw[s] << " against " << direct[s];

  EXPECT_THROW(m.inputs_to_raw(nullptr, 1, raw_in.data()), fpyga::value_error);
  EXPECT_THROW(m.outputs_from_raw(raw_out.data(), 1, nullptr), fpyga::value_error);
  m.inputs_to_raw(nullptr, 0, nullptr);  // nothing to convert
}

TEST_F(NnModelEmu, NanAndInfinityConvertAsApFixedDoes) {
  fpyga::nn_model m(mlp_path, {fpyga::device::open("emu")});
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  volatile float zero = 0.0f;
  auto x = inputs(4, 6);
  x[0] = nan;
  x[27 + 3] = inf;
  x[54 + 26] = -inf;
  x[81 + 1] = zero / zero;  // x86's default NaN, sign bit set
  std::vector<float> y(4);
  m.predict(x.data(), 4, y.data());
  // Xilinx's constructor (checked against its headers in test_fixed) gives these raw values.
  std::vector<std::int16_t> raw(x.size());
  fpyga::to_fixed(x.data(), x.size(), raw.data(), 2, fpyga::ap_fixed_16_6(),
                  fpyga::nonfinite_policy::ap_fixed);
  for (std::size_t s = 0; s < 4; ++s)
    EXPECT_EQ(y[s], static_cast<float>(ref(raw.data() + s * 27) / 1024.0)) << "sample " << s;
}

TEST_F(NnModelEmu, ProgressIsReportedAndItsExceptionLeavesTheModelUsable) {
  fpyga::nn_model m(mlp_2cu_path, {fpyga::device::open("emu")});
  m.set_chunk_samples(10);
  const std::size_t n = 95;
  const auto x = inputs(n, 7);
  std::vector<float> y(n);
  std::vector<std::size_t> seen;
  m.predict(x.data(), n, y.data(), [&](std::size_t done) { seen.push_back(done); });
  ASSERT_EQ(seen.size(), 10u);
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i], seen[i - 1]);
  EXPECT_EQ(seen.back(), n);

  struct stop {};
  EXPECT_THROW(m.predict(x.data(), n, y.data(),
                         [](std::size_t done) {
                           if (done >= 30) throw stop{};
                         }),
               stop);
  const auto want = expected(x);
  std::fill(y.begin(), y.end(), -1.0f);
  m.predict(x.data(), n, y.data());
  for (std::size_t s = 0; s < n; ++s) ASSERT_EQ(y[s], want[s]) << "sample " << s;
}

// The hls4ml_axi interface (float buffers, krnl_rtl(in, out, in_size, out_size), the kernel
// converting with Xilinx's own ap_fixed(float) and to_float()) gives the same outputs as the
// fpyga_batch one, NaN and infinities included.
TEST_F(NnModelEmu, AxiInterfaceMatchesTheBatchInterface) {
  FPYGA_REQUIRE_FILE(axi_path, fpyga::test::built_xclbin_dir() / "mlp_axi.xclbin");
  fpyga::nn_model batch(mlp_path, {fpyga::device::open("emu:0")});
  fpyga::nn_model axi(axi_path.string(), {fpyga::device::open("emu:1")});
  EXPECT_EQ(axi.info().interface, fpyga::network_interface::hls4ml_axi);
  EXPECT_EQ(axi.raw_input_bytes(), 4u);
  EXPECT_EQ(axi.compute_units(), 1u);
  const std::size_t n = 203;
  auto x = inputs(n, 9);
  const auto want = expected(x);
  std::vector<float> y(n, -1.0f);
  axi.set_chunk_samples(50);
  axi.predict(x.data(), n, y.data());
  for (std::size_t s = 0; s < n; ++s) ASSERT_EQ(y[s], want[s]) << "sample " << s;
  float one = -1.0f;
  axi.predict(x.data() + 27 * 5, 1, &one);
  EXPECT_EQ(one, want[5]);
  // predict_raw takes the kernel's float32 containers.
  std::vector<float> raw_y(n);
  axi.predict_raw(x.data(), n, raw_y.data());
  EXPECT_EQ(raw_y, y);

  volatile float zero = 0.0f;
  x[0] = std::numeric_limits<float>::infinity();
  x[28] = -std::numeric_limits<float>::infinity();
  x[60] = std::numeric_limits<float>::quiet_NaN();
  x[100] = zero / zero;
  std::vector<float> y_axi(n), y_batch(n);
  axi.predict(x.data(), n, y_axi.data());
  batch.predict(x.data(), n, y_batch.data());
  EXPECT_EQ(y_axi, y_batch) << "fpyga's NaN/inf conversion differs from Xilinx's in the kernel";
}

TEST_F(NnModelEmu, Errors) {
  const auto dev = fpyga::device::open("emu");
  // An xclbin without a network description.
  FPYGA_REQUIRE_FILE(vadd, fpyga::test::built_xclbin_dir() / "vadd.xclbin");
  try {
    fpyga::nn_model bad(vadd.string(), {dev});
    FAIL() << "vadd.xclbin has no network";
  } catch (const fpyga::value_error& e) {
    EXPECT_NE(std::string(e.what()).find("vadd.xclbin"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no network description"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fpyga::nn_model(mlp_path, {dev, fpyga::device::open("emu:0")}), fpyga::value_error);
  EXPECT_THROW(fpyga::nn_model("/nonexistent/x.xclbin", {dev}), fpyga::error);

  fpyga::nn_model m(mlp_path, {dev});
  float y = 7.0f;
  m.predict(static_cast<const float*>(nullptr), 0, &y);  // n == 0: nothing happens
  EXPECT_EQ(y, 7.0f);
  EXPECT_THROW(m.predict(static_cast<const float*>(nullptr), 3, &y), fpyga::value_error);
  const auto x = inputs(1, 8);
  EXPECT_THROW(m.predict(x.data(), 1, static_cast<float*>(nullptr)), fpyga::value_error);
  EXPECT_THROW(m.predict(x.data(), std::numeric_limits<std::size_t>::max() / 4, &y),
               fpyga::value_error);
  fpyga::nn_model empty;
  EXPECT_FALSE(empty);
  EXPECT_THROW(empty.n_inputs(), fpyga::error);
  // Still usable.
  m.predict(x.data(), 1, &y);
  EXPECT_EQ(y, expected(x)[0]);
}

}  // namespace
