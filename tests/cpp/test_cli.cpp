// The `fpyga` binary as a user runs it: exit status, stdout, stderr.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backends/backend.hpp"
#include "fpyga/device.hpp"
#include "fpyga/xclbin.hpp"
#include "test_support.hpp"

using testing::HasSubstr;
namespace fs = std::filesystem;
using fpyga::test::quote;
using fpyga::test::slurp;

namespace {

struct result {
  int status = -1;
  std::string out, err;
};

class cli : public testing::Test {
 protected:
  void SetUp() override {
#ifndef FPYGA_CLI_PATH
    if (fpyga::test::under_ci()) FAIL() << "the fpyga CLI is not part of this build under CI";
    GTEST_SKIP() << "the fpyga CLI is not part of this build (FPYGA_BUILD_TOOLS=OFF)";
#else
    exe = FPYGA_CLI_PATH;
    ASSERT_TRUE(fs::exists(exe)) << exe;
#endif
    dir =
        fs::temp_directory_path() / ("fpyga_test_cli_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
  }
  void TearDown() override {
    if (!dir.empty()) fs::remove_all(dir);
  }

  /// Runs the CLI; `env` ("A=1 -u B ...", for env(1)) changes its environment. A minute at most:
  /// a run that never ends fails instead of hanging the suite.
  result run(const std::vector<std::string>& args, const std::string& env = "") {
    std::string cmd = "timeout 60 env " + env + " " + quote(exe);
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " >" + quote((dir / "out").string()) + " 2>" + quote((dir / "err").string());
    const int raw = std::system(cmd.c_str());
    result r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = slurp(dir / "out");
    r.err = slurp(dir / "err");
    return r;
  }

  fs::path write(const std::string& name, const std::string& content) {
    const auto p = dir / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

  std::string exe;
  fs::path dir;
};

const char* const desc = R"({
  "platform": "xilinx_u250_gen3x16_xdma_4_1_202210_1",
  "clocks": [{"name": "DATA_CLK", "frequency_mhz": 300, "type": "data"}],
  "memories": [{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": 17179869184}],
  "kernels": [{"name": "vadd", "language": "c++",
    "args": [{"name": "a", "type": "float const *", "kind": "global"},
             {"name": "b", "type": "float*", "kind": "global"},
             {"name": "n", "type": "int", "kind": "scalar"}],
    "instances": [{"name": "vadd_1", "base_address": 25165824, "control": "ap_ctrl_hs",
                   "connections": {"a": "bank0", "b": "bank0"}}]}]
})";

}  // namespace

TEST_F(cli, info_on_the_real_awsxclbin) {
  FPYGA_REQUIRE_FILE(path,
                     fpyga::test::shared_xclbin_dir() / "aws_vector_addition_2018_3.awsxclbin");
  const auto r = run({"xclbin", "info", path.string()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("c1087066-d39e-48c8-917a-719a3e2e28aa"));
  EXPECT_THAT(r.out, HasSubstr("agfi-046565baf5ce48c86"));
  EXPECT_THAT(r.out, HasSubstr("Target:    hw"));
  EXPECT_THAT(r.out, HasSubstr("vector_add_1"));
  EXPECT_THAT(r.out, HasSubstr("n_elements"));
  EXPECT_THAT(r.out, HasSubstr("offset 0x34"));
  EXPECT_THAT(r.out, HasSubstr("bank3"));
  EXPECT_THAT(r.out, HasSubstr("KERNEL_CLK"));
  EXPECT_THAT(r.out, testing::ContainsRegex("MEM_TOPOLOGY +runtime_data +offset +3888  size 168"));
  EXPECT_EQ(r.err, "");
}

TEST_F(cli, info_json_is_the_documented_schema) {
  FPYGA_REQUIRE_FILE(path,
                     fpyga::test::shared_xclbin_dir() / "aws_vector_addition_2018_3.awsxclbin");
  const auto r = run({"xclbin", "info", path.string(), "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"uuid", "target", "agfi", "platform", "clocks", "memories", "kernels"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["agfi"], "agfi-046565baf5ce48c86");
  EXPECT_EQ(j["kernels"][0]["args"][3]["name"], "n_elements");
  EXPECT_EQ(j["kernels"][0]["args"][3]["offset"], 0x34);
  EXPECT_EQ(j["kernels"][0]["instances"][0]["name"], "vector_add_1");
  EXPECT_EQ(j["memories"].size(), 4u);
  for (const auto& m : j["memories"])
    for (const char* key : {"index", "tag", "type", "used", "base_address", "size_bytes"})
      EXPECT_TRUE(m.contains(key)) << key;
  EXPECT_EQ(j, nlohmann::json::parse(fpyga::xclbin::read(path.string()).to_json()));
}

TEST_F(cli, pack_then_info) {
  const auto d = write("desc.json", desc);
  const auto bits = write("k.so", std::string("\x7f"
                                              "ELF\x02\x01\x01\0\0\0\0",
                                              12));
  const auto out = dir / "k.xclbin";
  auto r = run(
      {"xclbin", "pack", "--json", d.string(), "--bitstream", bits.string(), "-o", out.string()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs::exists(dir / "k.xclbin.tmp"));
  const auto x = fpyga::xclbin::read(out.string());
  EXPECT_EQ(x.mode, fpyga::xclbin_mode::sw_emu);  // default for an ELF bitstream
  EXPECT_EQ(x.platform_vbnv, "xilinx_u250_gen3x16_xdma_4_1_202210_1");
  ASSERT_NE(x.find_kernel("vadd"), nullptr);
  EXPECT_EQ(x.find_kernel("vadd")->args[2].offset, 0x28u);

  r = run({"xclbin", "info", "--json", out.string()});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["target"], "sw_emu");
  EXPECT_EQ(j["agfi"], nullptr);
  EXPECT_EQ(j["kernels"][0]["args"][0]["memories"], nlohmann::json::array({"bank0"}));
  EXPECT_EQ(j["kernels"][0]["instances"][0]["base_address"], 25165824);

  // Deterministic: packing again gives the same bytes.
  const auto out2 = dir / "k2.xclbin";
  r = run(
      {"xclbin", "pack", "--json", d.string(), "--bitstream", bits.string(), "-o", out2.string()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(slurp(out), slurp(out2));
}

TEST_F(cli, pack_rejects_a_bad_description) {
  const auto d =
      write("bad.json", R"({"kernels": [{"name": "k", "args": [{"name": "a", "type": "int*"}],
      "instances": [{"name": "k_1", "connections": {"a": "nowhere"}}]}]})");
  const auto out = dir / "bad.xclbin";
  const auto r = run({"xclbin", "pack", "--json", d.string(), "-o", out.string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("fpyga: error:"));
  EXPECT_THAT(r.err, HasSubstr("bad.json"));
  EXPECT_THAT(r.err, HasSubstr("no memory with tag 'nowhere'"));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(dir / "bad.xclbin.tmp"));
}

TEST_F(cli, info_on_a_damaged_file_names_file_and_section) {
  const auto d = write("desc.json", desc);
  const auto out = dir / "k.xclbin";
  ASSERT_EQ(run({"xclbin", "pack", "--json", d.string(), "-o", out.string()}).status, 0);
  auto bytes = slurp(out);
  const auto cut = write("cut.xclbin", bytes.substr(0, bytes.size() - 10));
  auto r = run({"xclbin", "info", cut.string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("cut.xclbin"));
  EXPECT_THAT(r.err, HasSubstr("m_length"));
  EXPECT_EQ(r.out, "");

  // A lying MEM_TOPOLOGY count: find that section in the table and inflate its count.
  const auto x = fpyga::xclbin::read(out.string());
  ASSERT_EQ(x.memories.size(), 1u);
  std::size_t mem_offset = 0;
  const auto n = static_cast<unsigned char>(bytes[448]);
  for (unsigned i = 0; i < n; ++i)
    if (static_cast<unsigned char>(bytes[456 + 40 * i]) == 6)
      std::memcpy(&mem_offset, bytes.data() + 456 + 40 * i + 24, 8);
  ASSERT_NE(mem_offset, 0u);
  bytes[mem_offset] = 9;
  const auto lying = write("lying.xclbin", bytes);
  r = run({"xclbin", "info", "--json", lying.string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("lying.xclbin"));
  EXPECT_THAT(r.err, HasSubstr("MEM_TOPOLOGY"));
  EXPECT_THAT(r.err, HasSubstr("entry count 9"));
}

TEST_F(cli, missing_file_and_usage_errors) {
  auto r = run({"xclbin", "info", (dir / "nope.xclbin").string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("nope.xclbin"));
  r = run({"xclbin", "pack", "-o", (dir / "x.xclbin").string()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("--json"));
  r = run({});
  EXPECT_NE(r.status, 0);
  r = run({"--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.out, HasSubstr("devices"));
}

TEST_F(cli, devices_lists_emu) {
  const auto r = run({"devices"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("BACKEND"));
  EXPECT_THAT(r.out, testing::ContainsRegex("\nemu +0 "));
}

// Issue 18 item 19: a path that is not a regular file, or is too large, is refused at once with
// the file's name (it read 2 GB then failed with std::bad_alloc, or read /dev/zero forever).
TEST_F(cli, info_and_pack_refuse_what_is_not_a_regular_file) {
  auto r = run({"xclbin", "info", dir.string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("xclbin '" + dir.string() + "': it is a directory"));
  for (const char* dev : {"/dev/zero", "/dev/urandom"}) {
    r = run({"xclbin", "info", "--json", dev});
    EXPECT_EQ(r.status, 1) << dev;
    EXPECT_THAT(r.err, HasSubstr(std::string("'") + dev + "': it is a character device"));
    EXPECT_EQ(r.out, "");
  }
  const auto huge = dir / "huge.xclbin";
  std::ofstream(huge).put('x');
  std::error_code ec;
  fs::resize_file(huge, 50'000'000'000ull, ec);
  if (!ec) {
    r = run({"xclbin", "info", huge.string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_THAT(r.err, HasSubstr("huge.xclbin"));
    EXPECT_THAT(r.err, HasSubstr("50000000000 bytes, more than the"));
  }
  const auto d = write("desc.json", desc);
  const auto out = dir / "k.xclbin";
  r = run({"xclbin", "pack", "--json", d.string(), "--bitstream", "/dev/zero", "-o", out.string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("bitstream '/dev/zero': it is a character device"));
  EXPECT_FALSE(fs::exists(out));
  r = run({"xclbin", "pack", "--json", "/dev/urandom", "-o", out.string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("description '/dev/urandom'"));
}

// Item 17: names that are not UTF-8 are an error naming the file and section, in the text and
// the JSON form alike (the JSON form used to print U+FFFD where Python raised
// UnicodeDecodeError).
TEST_F(cli, info_refuses_names_that_are_not_utf8) {
  const auto d = write("desc.json", desc);
  const auto out = dir / "k.xclbin";
  ASSERT_EQ(run({"xclbin", "pack", "--json", d.string(), "-o", out.string()}).status, 0);
  auto bytes = slurp(out);
  const auto at = bytes.find("bank0");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 1] = '\xff';
  const auto bad = write("latin.xclbin", bytes);
  for (const bool json : {false, true}) {
    std::vector<std::string> args = {"xclbin", "info", bad.string()};
    if (json) args.push_back("--json");
    const auto r = run(args);
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_THAT(r.err, HasSubstr("latin.xclbin"));
    EXPECT_THAT(r.err, HasSubstr("MEM_TOPOLOGY"));
    EXPECT_THAT(r.err, HasSubstr("tag is not valid UTF-8 (byte 0xff at position 1)"));
    EXPECT_EQ(r.out, "");
  }
}

// Item 21: the XRT backend's XILINX_XRT directory is one per user under the temp directory,
// kept and reused (it was a new fpyga-xrt-XXXXXX per process, left behind by killed ones).
TEST_F(cli, xrt_environment_directory_is_one_per_user_and_reused) {
  bool with_xrt = false;
  for (const auto& b : fpyga::backend::backends()) with_xrt = with_xrt || b.name == "xrt";
  if (!with_xrt) GTEST_SKIP() << "this build has no XRT backend";
  const auto tmp = dir / "tmp";
  fs::create_directories(tmp);
  const std::string env = "-u XILINX_XRT XCL_EMULATION_MODE=noop TMPDIR=" + quote(tmp.string());
  const auto root = tmp / ("fpyga-xrt-" + std::to_string(::geteuid()));
  auto r = run({"devices"}, env);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, testing::ContainsRegex("\nxrt +0 "));
  ASSERT_TRUE(fs::is_directory(root)) << "kept after the process ended";
  ASSERT_TRUE(fs::is_symlink(root / "lib"));
  const auto target = fs::read_symlink(root / "lib");
  EXPECT_TRUE(fs::exists(target / "libxrt_coreutil.so.2")) << target;
  // A killed process leaves nothing new: the next ones reuse the same directory.
  std::system(("timeout -s KILL 0.05 env " + env + " " + quote(exe) + " devices >/dev/null 2>&1")
                  .c_str());
  r = run({"devices"}, env);
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(tmp)) entries.push_back(e.path().filename());
  EXPECT_EQ(entries, std::vector<std::string>{root.filename().string()});
  // A stale link (another XRT install) is replaced.
  fs::remove(root / "lib");
  fs::create_directory_symlink(dir / "nowhere", root / "lib");
  r = run({"devices"}, env);
  EXPECT_THAT(r.out, testing::ContainsRegex("\nxrt +0 "));
  EXPECT_EQ(fs::read_symlink(root / "lib"), target);
  // A directory others may write is not trusted: no XRT devices, no crash.
  fs::permissions(root, fs::perms::all);
  r = run({"devices"}, env);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, testing::Not(testing::ContainsRegex("\nxrt +0 ")));
  EXPECT_THAT(r.out, testing::ContainsRegex("\nemu +0 "));
}

// Issue 14: usage errors exit 2 with CLI11's message (they exited 106 or 109), an unknown
// subcommand is named with the nearest one (it said "A subcommand is required").
TEST_F(cli, usage_errors_exit_2_and_name_unknown_subcommands) {
  auto r = run({"devcies"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("'devcies' is not a fpyga subcommand (did you mean 'devices'?)"));
  EXPECT_EQ(r.out, "");
  r = run({"xclbin", "inf", "x.xclbin"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("'inf' is not a fpyga xclbin subcommand (did you mean 'info'?)"));
  r = run({"frobnicate"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("'frobnicate' is not a fpyga subcommand; the subcommands are"));
  r = run({});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("subcommand"));
  r = run({"xclbin", "pack", "-o", (dir / "x.xclbin").string()});  // --json is required
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("--json is required"));
  r = run({"devices", "--frobnicate"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("--frobnicate"));
  r = run({"xclbin", "info"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("FILE is required"));
  // Help and version are not errors.
  EXPECT_EQ(run({"xclbin", "--help"}).status, 0);
  r = run({"--version"});
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.out, testing::MatchesRegex("fpyga [0-9]+\\.[0-9]+\\.[0-9]+\n"));
}

// Issue 14: file errors name the file: a directory, an unreadable file, a file too short to be
// an xclbin (the CLI said "basic_filebuf::underflow error" for a directory).
TEST_F(cli, file_errors_name_the_file) {
  auto r = run({"xclbin", "info", dir.string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("'" + dir.string() + "': it is a directory"));
  const auto short_file = write("short.xclbin", "xclbin2");
  r = run({"xclbin", "info", short_file.string()});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr(short_file.string()));
  EXPECT_THAT(r.err, HasSubstr("7 bytes"));
  const auto locked = write("locked.xclbin", std::string(600, 'x'));
  fs::permissions(locked, fs::perms::none);
  if (::geteuid() != 0) {  // root reads it anyway
    r = run({"xclbin", "info", locked.string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_THAT(r.err, HasSubstr("cannot open xclbin '" + locked.string() + "': Permission denied"));
  }
}

// Issue 14: backends are plugins. With none to load, `devices` still lists emu and says why
// each plugin backend is not available; --json says the same for programs.
TEST_F(cli, devices_without_plugins_and_as_json) {
  const auto empty = dir / "no_plugins";
  fs::create_directories(empty);
  auto r = run({"devices"}, "FPYGA_PLUGIN_DIR=" + quote(empty.string()));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, testing::ContainsRegex("\nemu +0 "));
  EXPECT_THAT(r.out, HasSubstr("emu: available (built in)"));
  for (const auto& b : fpyga::backends()) {
    if (b.name == "emu") continue;
    EXPECT_THAT(r.out, HasSubstr(b.name + ": not available: no plugin " + empty.string() +
                                 "/libfpyga_backend_" + b.name + ".so (FPYGA_PLUGIN_DIR)"));
  }
  r = run({"devices", "--json"}, "FPYGA_PLUGIN_DIR=" + quote(empty.string()));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("devices") && j.contains("backends")) << r.out;
  EXPECT_EQ(j["devices"][0]["spec"], "emu:0");
  EXPECT_EQ(j["backends"].back()["name"], "emu");
  EXPECT_EQ(j["backends"].back()["available"], true);
  for (const auto& b : j["backends"])
    if (b["name"] != "emu") {
      EXPECT_EQ(b["available"], false);
      EXPECT_THAT(b["reason"].get<std::string>(), HasSubstr("no plugin"));
    }
  // With the plugins of this build: every backend of this process is listed the same way.
  r = run({"devices", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto all = nlohmann::json::parse(r.out);
  const auto here = fpyga::backends();
  ASSERT_EQ(all["backends"].size(), here.size());
  for (std::size_t i = 0; i < here.size(); ++i) {
    EXPECT_EQ(all["backends"][i]["name"], here[i].name);
    EXPECT_EQ(all["backends"][i]["available"], here[i].available) << here[i].reason;
  }
}

// Issue 14: the log level comes from FPYGA_LOG_LEVEL: debug shows how the backends were loaded,
// off silences warnings, the default shows warnings only.
TEST_F(cli, log_level_from_the_environment) {
  auto r = run({"devices"}, "FPYGA_LOG_LEVEL=debug FPYGA_EMU_DEVICES=lots");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("fpyga debug: backend emu: built in"));
  EXPECT_THAT(r.err, HasSubstr("fpyga warning: FPYGA_EMU_DEVICES='lots' is not a count"));
  r = run({"devices"}, "FPYGA_LOG_LEVEL=off FPYGA_EMU_DEVICES=lots");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  r = run({"devices"}, "-u FPYGA_LOG_LEVEL FPYGA_EMU_DEVICES=lots");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("fpyga warning: FPYGA_EMU_DEVICES='lots' is not a count"));
  EXPECT_THAT(r.err, testing::Not(HasSubstr("fpyga debug")));
  r = run({"devices"}, "FPYGA_LOG_LEVEL=loud");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("FPYGA_LOG_LEVEL='loud' is not one of debug, info, warning, error, off"));
}
