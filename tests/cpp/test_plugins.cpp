// Backends as plugins (issue 14): libfpyga needs no vendor library, loads the XRT and OpenCL
// backends from fpyga/ beside itself, and reports a backend it could not load as not available
// with the reason. And the warning/log handlers a C++ host can set.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "fpyga/device.hpp"
#include "fpyga/warning.hpp"

using testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

fs::path libfpyga_path() {
  Dl_info info{};
  EXPECT_NE(::dladdr(reinterpret_cast<const void*>(&fpyga::backends), &info), 0);
  return fs::canonical(info.dli_fname);
}

std::vector<std::string> needed(const fs::path& file) {
  std::vector<std::string> out;
  std::FILE* p = ::popen(("readelf -d '" + file.string() + "'").c_str(), "r");
  if (!p) return out;
  char line[1024];
  const std::regex entry(R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])");
  while (std::fgets(line, sizeof line, p)) {
    std::cmatch m;
    if (std::regex_search(line, m, entry)) out.push_back(m[1]);
  }
  ::pclose(p);
  return out;
}

bool vendor(const std::string& name) {
  return std::regex_search(name, std::regex("xrt|OpenCL|uuid", std::regex::icase));
}

}  // namespace

TEST(plugins, libfpyga_needs_no_vendor_library) {
  const auto lib = libfpyga_path();
  const auto names = needed(lib);
  ASSERT_FALSE(names.empty()) << "readelf found no NEEDED entries in " << lib;
  for (const auto& n : names) EXPECT_FALSE(vendor(n)) << lib << " needs " << n;
}

TEST(plugins, backends_come_from_beside_libfpyga) {
  const auto all = fpyga::backends();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back().name, "emu");
  EXPECT_TRUE(all.back().available);
  EXPECT_EQ(all.back().plugin, "");
  const auto dir = libfpyga_path().parent_path() / "fpyga";
  for (const auto& b : all) {
    if (b.name == "emu") continue;
    EXPECT_EQ(fs::path(b.plugin), dir / ("libfpyga_backend_" + b.name + ".so"));
    EXPECT_TRUE(b.available) << b.name << ": " << b.reason;
    bool links_vendor = false;
    for (const auto& n : needed(b.plugin)) links_vendor = links_vendor || vendor(n);
    EXPECT_TRUE(links_vendor) << b.plugin << " should carry its vendor library";
    EXPECT_EQ(b.hardware, b.name == "xrt");
  }
  // Every device listed belongs to an available backend; emu is always there.
  bool emu = false;
  for (const auto& d : fpyga::devices()) {
    emu = emu || d.backend() == "emu";
    bool listed = false;
    for (const auto& b : all) listed = listed || (b.name == d.backend() && b.available);
    EXPECT_TRUE(listed) << d.spec();
  }
  EXPECT_TRUE(emu);
}

// A C++ host's own handlers, and the level that filters what reaches them.
TEST(plugins, warning_and_log_handlers_and_level) {
  std::vector<std::string> got;
  const auto old_level = fpyga::current_log_level();
  auto old_warning = fpyga::set_warning_handler([&](std::string_view m) { got.push_back("W " + std::string(m)); });
  auto old_log = fpyga::set_log_handler([&](fpyga::log_level l, std::string_view m) {
    got.push_back(std::string(fpyga::to_string(l)) + " " + std::string(m));
  });
  fpyga::set_log_level(fpyga::log_level::info);
  fpyga::warn("one");
  fpyga::log(fpyga::log_level::info, "two");
  fpyga::log(fpyga::log_level::debug, "hidden");
  fpyga::log(fpyga::log_level::error, "three");
  fpyga::set_log_level(fpyga::log_level::off);
  fpyga::warn("silenced");
  fpyga::log(fpyga::log_level::error, "silenced too");
  fpyga::set_log_level(fpyga::log_level::error);
  fpyga::warn("below error");
  fpyga::set_log_level(old_level);
  fpyga::set_warning_handler(old_warning);
  fpyga::set_log_handler(old_log);
  EXPECT_EQ(got, (std::vector<std::string>{"W one", "info two", "error three"}));
}
