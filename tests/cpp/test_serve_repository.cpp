// fpyga serve's model repository: the Triton layout (versions, config.pbtxt, models without a
// config), models that fail to load (the others serve, the index says why), more models than
// devices, load and unload; config.pbtxt errors name the file and field.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "fpyga/fpyga.hpp"
#include "model_repository.hpp"
#include "test_support.hpp"

namespace {

const int four_emu_devices = [] {
  ::setenv("FPYGA_EMU_DEVICES", "4", 1);
  ::unsetenv("FPYGA_DEVICE");
  return 0;
}();

namespace fs = std::filesystem;
using fpyga::serve::model_repository;
using fpyga::serve::request_error;
using fpyga::serve::status_code;

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

std::vector<fpyga::device> emu(std::initializer_list<const char*> specs) {
  std::vector<fpyga::device> d;
  for (auto s : specs) d.push_back(fpyga::device::open(s));
  return d;
}

class ServeRepository : public ::testing::Test {
 protected:
  void SetUp() override {
    FPYGA_REQUIRE_FILE(mlp, fpyga::test::built_xclbin_dir() / "mlp.xclbin");
    FPYGA_REQUIRE_FILE(mlp2, fpyga::test::built_xclbin_dir() / "mlp_2cu.xclbin");
    mlp_path = mlp;
    mlp2_path = mlp2;
    root = fs::temp_directory_path() /
           ("fpyga_serve_repo_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
    fs::create_directories(root);
  }
  void TearDown() override { fs::remove_all(root); }
  void put(const std::string& model, int version, const fs::path& xclbin) {
    fs::create_directories(root / model / std::to_string(version));
    fs::copy_file(xclbin, root / model / std::to_string(version) / "model.xclbin");
  }
  fpyga::network_info net() { return fpyga::nn_model(mlp_path.string(), emu({"emu:3"})).info(); }

  fs::path mlp_path, mlp2_path, root;
};

TEST_F(ServeRepository, LoadsTheLatestVersionOfEachModelAndReportsTheOthers) {
  put("muon", 1, mlp_path);
  put("muon", 2, mlp2_path);
  put("tagger", 3, mlp_path);
  write(root / "tagger" / "config.pbtxt", R"(
    name: "tagger"
    backend: "fpyga"
    max_batch_size: 16
    input [ { name: "x" data_type: TYPE_FP32 dims: [ 3, 9 ] } ]
    output [ { name: "score" data_type: TYPE_FP32 dims: [ 1 ] } ]
    dynamic_batching { preferred_batch_size: [ 8 ] max_queue_delay_microseconds: 100 }
    instance_group [ { count: 1 kind: KIND_CPU } ]
    optimization { }
  )");
  write(root / "broken" / "1" / "model.xclbin", "not an xclbin");
  fs::create_directories(root / "empty");
  model_repository repo(root, emu({"emu:0", "emu:1", "emu:2"}));

  const auto muon = repo.find("muon");
  ASSERT_TRUE(muon);
  EXPECT_EQ(muon->version, 2);
  EXPECT_TRUE(muon->ready()) << muon->reason;
  EXPECT_EQ(muon->config.inputs.at(0).name, "input_1");  // from the xclbin's description
  EXPECT_EQ(muon->config.inputs.at(0).dims, std::vector<std::int64_t>{27});
  EXPECT_EQ(muon->config.outputs.at(0).name, "layer14_out");
  EXPECT_TRUE(muon->config.dynamic_batching);
  const auto v1 = repo.find("muon", "1");
  ASSERT_TRUE(v1);
  EXPECT_FALSE(v1->ready());
  EXPECT_NE(v1->reason.find("latest version (2)"), std::string::npos) << v1->reason;
  EXPECT_FALSE(repo.find("muon", "7"));
  EXPECT_FALSE(repo.find("muon", "x"));
  EXPECT_EQ(repo.versions("muon"), (std::vector<std::int64_t>{1, 2}));

  const auto tagger = repo.find("tagger");
  ASSERT_TRUE(tagger);
  ASSERT_TRUE(tagger->ready()) << tagger->reason;
  EXPECT_EQ(tagger->config.max_batch_size, 16u);
  EXPECT_EQ(tagger->config.inputs.at(0).name, "x");
  EXPECT_EQ(tagger->config.inputs.at(0).dims, (std::vector<std::int64_t>{3, 9}));
  EXPECT_EQ(tagger->config.outputs.at(0).name, "score");
  EXPECT_EQ(tagger->config.preferred_batch_sizes, std::vector<std::size_t>{8});
  EXPECT_EQ(tagger->config.max_queue_delay_us, 100u);

  const auto broken = repo.find("broken");
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->state, "UNAVAILABLE");
  EXPECT_NE(broken->reason.find("model.xclbin"), std::string::npos) << broken->reason;
  const auto empty = repo.find("empty");
  ASSERT_TRUE(empty);
  EXPECT_NE(empty->reason.find("no version directory"), std::string::npos) << empty->reason;
  EXPECT_FALSE(repo.all_ready());
  EXPECT_EQ(repo.index().size(), 5u);  // muon 1 and 2, tagger, broken, empty

  // The ready models serve, bit for bit what nn_model gives on another device.
  std::vector<float> x(5 * 27);
  std::mt19937 rng(3);
  for (auto& v : x) v = std::uniform_real_distribution<float>(-3, 3)(rng);
  std::vector<float> want(5), got(5), got2(5);
  fpyga::nn_model(mlp_path.string(), emu({"emu:3"})).predict(x.data(), 5, want.data());
  muon->sched->infer(x.data(), 5, got.data());
  tagger->sched->infer(x.data(), 5, got2.data());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got2, want);
}

TEST_F(ServeRepository, MoreModelsThanDevicesLeavesTheLastWithoutADevice) {
  put("a", 1, mlp_path);
  put("b", 1, mlp_path);
  model_repository repo(root, emu({"emu:0"}));
  EXPECT_TRUE(repo.find("a")->ready());
  EXPECT_FALSE(repo.find("b")->ready());
  EXPECT_NE(repo.find("b")->reason.find("no free device"), std::string::npos);
  // Unloading a frees its device for b.
  repo.unload("a");
  EXPECT_EQ(repo.find("a")->reason, "unloaded");
  repo.load("b");
  EXPECT_TRUE(repo.find("b")->ready()) << repo.find("b")->reason;
  try {
    repo.load("nope");
    FAIL() << "loaded a model that is not there";
  } catch (const request_error& e) {
    EXPECT_EQ(e.code(), status_code::not_found);
  }
  try {
    repo.load("a");
    FAIL() << "a has no device left";
  } catch (const request_error& e) {
    EXPECT_EQ(e.code(), status_code::unavailable);
    EXPECT_NE(std::string(e.what()).find("no free device"), std::string::npos) << e.what();
  }
}

TEST_F(ServeRepository, ConfigErrorsNameTheFileAndField) {
  const auto info = net();
  const auto error_of = [&](const std::string& text) -> std::string {
    auto c = fpyga::serve::model_config::from_network("m", info);
    try {
      c.apply_pbtxt(text, "m/config.pbtxt", info);
    } catch (const fpyga::value_error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error_of("max_batch_size: 4"), "");
  EXPECT_NE(error_of("max_batch_size: 4 input [ { name: \"x\" data_type: TYPE_INT32 dims: [27] } ]")
                .find("m/config.pbtxt: input 'x': data_type TYPE_INT32"),
            std::string::npos);
  EXPECT_NE(error_of("input [ { name: \"x\" data_type: TYPE_FP32 dims: [26] } ]")
                .find("dims [26] hold 26 values, the network's tensor [27] 27"),
            std::string::npos);
  EXPECT_NE(error_of("max_batch_size: 4 dynamic_batching { preferred_batch_size: [ 8 ] }")
                .find("preferred_batch_size: 8 must be in 1..4"),
            std::string::npos);
  EXPECT_NE(error_of("name: \"other\"").find("differs from the model's directory name"),
            std::string::npos);
  EXPECT_NE(error_of("backend: \"onnxruntime\"").find("backend: 'onnxruntime' is not served"),
            std::string::npos);
  EXPECT_NE(
      error_of("max_batch_size: {").find("m/config.pbtxt: not a valid model configuration: line 1"),
      std::string::npos)
      << error_of("max_batch_size: {");
  // A model whose config is wrong is reported, not served.
  put("m", 1, mlp_path);
  write(root / "m" / "config.pbtxt", "max_batch_size: -2");
  model_repository repo(root, emu({"emu:0"}));
  EXPECT_FALSE(repo.find("m")->ready());
  EXPECT_NE(repo.find("m")->reason.find("max_batch_size: must be 0 or positive"), std::string::npos)
      << repo.find("m")->reason;
}

}  // namespace
