// `fpyga hls4ml ARGS...`: the CLI runs `python -m fpyga.hls4ml ARGS...` with the build's Python
// (or $FPYGA_PYTHON) and passes its exit status through; a missing interpreter or package is a
// one-line error. A stand-in `fpyga.hls4ml` package (first on PYTHONPATH) reports the arguments
// it got and exits with a chosen status, so the forwarding is checked on its own.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "test_support.hpp"

using testing::HasSubstr;
namespace fs = std::filesystem;
using fpyga::test::quote;
using fpyga::test::slurp;

namespace {

class cli_hls4ml : public testing::Test {
 protected:
  void SetUp() override {
#ifndef FPYGA_CLI_PATH
    if (fpyga::test::under_ci()) FAIL() << "the fpyga CLI is not part of this build under CI";
    GTEST_SKIP() << "the fpyga CLI is not part of this build (FPYGA_BUILD_TOOLS=OFF)";
#else
    exe = FPYGA_CLI_PATH;
#endif
    dir =
        fs::temp_directory_path() / ("fpyga_test_cli_hls4ml_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir / "py" / "fpyga" / "hls4ml");
    std::ofstream(dir / "py" / "fpyga" / "__init__.py");
    std::ofstream(dir / "py" / "fpyga" / "hls4ml" / "__init__.py");
    std::ofstream(dir / "py" / "fpyga" / "hls4ml" / "__main__.py")
        << "import json, sys\nprint(json.dumps(sys.argv[1:]))\nsys.exit(int(__import__('os')"
           ".environ.get('STAND_IN_STATUS', '0')))\n";
  }
  void TearDown() override {
    if (!dir.empty()) fs::remove_all(dir);
  }

  struct result {
    int status = -1;
    std::string out, err;
  };

  result run(const std::vector<std::string>& args, const std::string& env) {
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

  std::string stand_in() const {
    return "PYTHONPATH=" + quote((dir / "py").string());
  }

  std::string exe;
  fs::path dir;
};

TEST_F(cli_hls4ml, ForwardsEveryArgumentAndTheExitStatus) {
  const auto r = run({"hls4ml", "build", "model.json", "--help", "-o", "a b.xclbin"},
                     "-u FPYGA_PYTHON STAND_IN_STATUS=7 " + stand_in());
  EXPECT_EQ(r.status, 7) << r.err;
  EXPECT_EQ(r.out, "[\"build\", \"model.json\", \"--help\", \"-o\", \"a b.xclbin\"]\n") << r.err;
  const auto ok = run({"hls4ml"}, "-u FPYGA_PYTHON STAND_IN_STATUS=0 " + stand_in());
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_EQ(ok.out, "[]\n");
}

TEST_F(cli_hls4ml, FpygaPythonChoosesTheInterpreter) {
  const auto r = run({"hls4ml", "x"}, "FPYGA_PYTHON=/nonexistent/python3 " + stand_in());
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot run Python '/nonexistent/python3'"));
  EXPECT_THAT(r.err, HasSubstr("FPYGA_PYTHON"));
}

TEST_F(cli_hls4ml, APackageThatCannotBeImportedIsAOneLineError) {
  // A stand-in fpyga first on the path whose import fails, as a broken install's would.
  fs::create_directories(dir / "broken" / "fpyga");
  std::ofstream(dir / "broken" / "fpyga" / "__init__.py")
      << "raise ImportError('stand-in: this fpyga cannot be imported')\n";
  const auto r =
      run({"hls4ml", "build"}, "-u FPYGA_PYTHON PYTHONPATH=" + quote((dir / "broken").string()));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("ImportError: stand-in: this fpyga cannot be imported"));
  EXPECT_THAT(r.err, HasSubstr("fpyga: error: Python '"));
  EXPECT_THAT(r.err, HasSubstr("cannot import fpyga.hls4ml"));
  EXPECT_EQ(r.err.find("Traceback"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

}  // namespace
