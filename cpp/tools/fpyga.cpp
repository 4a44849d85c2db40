// The fpyga command line: inspect and pack xclbins, list devices.
//   fpyga xclbin info FILE [--json]
//   fpyga xclbin pack --json DESC [--bitstream FILE] -o OUT
//   fpyga devices [--json]
//   fpyga serve --model-repository DIR ...   (when built with FPYGA_WITH_SERVE)
//   fpyga hls4ml ARGS...   (python -m fpyga.hls4ml ARGS...)
// Errors go to stderr as "fpyga: error: ..." with exit status 1; usage errors (CLI11's message,
// or an unknown subcommand named with the nearest one) exit with status 2.
#include <CLI/CLI.hpp>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "fpyga/device.hpp"
#include "fpyga/error.hpp"
#include "fpyga/network.hpp"
#include "fpyga/xclbin.hpp"
#ifdef FPYGA_WITH_SERVE
#include "serve_cli.hpp"  // `fpyga serve` (cpp/serve)
#endif
#include "read_file.hpp"

namespace {

std::string hex(std::uint64_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

/// A value for a column of `width`: one that fills or overflows it gets a space after it, so
/// that long names (streaming_connection, hls::stream<...>&) stay apart from the next column.
std::string column(std::string_view v, std::size_t width) {
  return v.size() >= width ? std::string(v) + " " : std::string(v);
}

std::string human_size(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  std::uint64_t v = bytes;
  while (u < 4 && v >= 1024 && v % 1024 == 0) {
    v /= 1024;
    ++u;
  }
  return std::to_string(v) + " " + units[u];
}

std::string kind_name(fpyga::section_kind kind) {
  const auto name = to_string(kind);
  return name == "unknown" ? "kind " + std::to_string(static_cast<std::uint32_t>(kind))
                           : std::string(name);
}

void print_info(const fpyga::xclbin& x, std::ostream& out) {
  out << "File:      " << x.source << "\n";
  out << "UUID:      " << x.uuid_string() << "\n";
  out << "Target:    " << x.target() << " (mode " << to_string(x.mode) << ")\n";
  const auto agfi = x.agfi();
  out << "AGFI:      " << (agfi ? *agfi : "-") << "\n";
  const auto platform = x.platform_name();
  out << "Platform:  " << (platform.empty() ? "-" : platform) << "\n";
  out << "Version:   " << int(x.version_major) << "." << int(x.version_minor) << "."
      << x.version_patch << "\n";
  out << "Bitstream: " << x.bitstream.size() << " bytes"
      << (x.bitstream_is_elf() ? " (ELF shared object: software kernels)"
          : agfi               ? " (AWS image id)"
                               : "")
      << "\n";

  out << "Timestamp: " << x.timestamp << "\n";

  out << "\nSections:\n";
  for (const auto& s : x.sections)
    out << "  " << std::left << std::setw(22) << kind_name(s.kind) << std::setw(18)
        << (s.name.empty() ? "-" : s.name) << std::right << "offset " << std::setw(8) << s.offset
        << "  size " << s.size << "\n";

  out << "\nClocks:\n";
  if (x.clocks.empty()) out << "  (none)\n";
  for (const auto& c : x.clocks)
    out << "  " << std::left << std::setw(16) << c.name << std::right << std::setw(5)
        << c.frequency_mhz << " MHz  " << to_string(c.type) << "\n";

  out << "\nMemories:\n";
  if (x.memories.empty()) out << "  (none)\n";
  for (const auto& m : x.memories)
    out << "  [" << m.index << "] " << std::left << std::setw(12) << m.tag << std::setw(8)
        << column(to_string(m.type), 8) << std::setw(8) << (m.used ? "used" : "unused") << "base "
        << std::setw(14) << hex(m.base_address) << "size " << human_size(m.size_bytes) << std::right
        << "\n";

  out << "\nKernels:\n";
  if (x.kernels.empty()) out << "  (none)\n";
  for (const auto& k : x.kernels) {
    out << "  " << k.name << (k.language.empty() ? "" : " (" + k.language + ")") << "\n";
    std::vector<const fpyga::ip_info*> cus;
    for (const auto& ip : x.ips)
      if ((ip.type == fpyga::ip_type::kernel || ip.type == fpyga::ip_type::ps_kernel) &&
          ip.kernel_name() == k.name)
        cus.push_back(&ip);
    out << "    args:\n";
    for (const auto& a : k.args) {
      std::string mems;
      for (const auto* ip : cus)
        for (unsigned m : x.memories_of(ip->index, a.index))
          if (m < x.memories.size() && mems.find(x.memories[m].tag) == std::string::npos)
            mems += (mems.empty() ? "" : ",") + x.memories[m].tag;
      out << "      " << std::setw(2) << a.index << " " << std::left << std::setw(14) << a.name
          << std::setw(28) << column(a.type, 28) << std::setw(7) << to_string(a.kind) << "offset "
          << std::setw(6) << hex(a.offset) << "size " << std::setw(3) << a.size << std::right
          << (mems.empty() ? "" : "  -> " + mems) << "\n";
    }
    out << "    compute units:\n";
    if (cus.empty())
      for (const auto& in : k.instances)
        out << "      " << in.name << "  base " << hex(in.base_address) << "\n";
    for (const auto* ip : cus)
      out << "      " << x.cu_instance(*ip) << "  base " << hex(ip->base_address) << "  "
          << to_string(ip->control) << (ip->interrupt_enabled ? "  interrupt" : "")
          << (ip->name.find(':') == std::string::npos ? "  (IP_LAYOUT: '" + ip->name + "')" : "")
          << "\n";
  }
  if (const auto net = fpyga::network_info::of(x)) {
    out << "\nNetwork:\n";
    out << "  name:      " << net->name << "\n";
    out << "  producer:  " << (net->producer.empty() ? "-" : net->producer)
        << (net->producer_version.empty() ? "" : " " + net->producer_version) << "\n";
    out << "  io_type:   " << net->io_type << "\n";
    out << "  interface: " << to_string(net->interface) << " (kernels: "
        << (net->interface == fpyga::network_interface::hls4ml_axi
                ? "axi " + net->axi_kernel
                : "batch " + net->batch_kernel +
                      (net->single_kernel.empty() ? "" : ", single " + net->single_kernel))
        << ")\n";
    const auto tensors = [&](const char* label, const std::vector<fpyga::tensor_info>& ts) {
      for (const auto& t : ts) {
        std::string shape;
        for (auto d : t.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
        out << "  " << label << std::left << std::setw(16) << t.name << std::right << " [" << shape
            << "]  " << t.type.to_string() << "\n";
      }
    };
    tensors("input   ", net->inputs);
    tensors("output  ", net->outputs);
  }
  if (!x.other_sections.empty()) {
    out << "\nOther sections:\n";
    for (const auto& s : x.other_sections)
      out << "  " << kind_name(s.kind) << (s.name.empty() ? "" : " '" + s.name + "'") << "  "
          << s.payload.size() << " bytes\n";
  }
}

int cmd_info(const std::string& file, bool json) {
  const auto x = fpyga::xclbin::read(file);
  if (json)
    std::cout << x.to_json(2) << "\n";
  else
    print_info(x, std::cout);
  return 0;
}

int cmd_pack(const std::string& desc_path, const std::string& bitstream_path,
             const std::string& out_path) {
  const auto desc =
      fpyga::detail::read_file(desc_path, "description", fpyga::detail::max_description_bytes);
  std::vector<std::byte> bits;
  if (!bitstream_path.empty())
    bits = fpyga::detail::read_file(bitstream_path, "bitstream", fpyga::detail::max_xclbin_bytes);
  const std::string_view text(reinterpret_cast<const char*>(desc.data()), desc.size());
  fpyga::xclbin x;
  try {
    x = fpyga::xclbin::from_description(text, std::move(bits));
  } catch (const fpyga::value_error& e) {
    throw fpyga::value_error(desc_path + ": " + e.what());
  }
  // Written to a temporary name first so a failed pack never leaves a half file for make.
  const std::string tmp = out_path + ".tmp";
  x.write(tmp);
  if (std::rename(tmp.c_str(), out_path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw fpyga::error("cannot move the packed xclbin to '" + out_path + "'");
  }
  return 0;
}

// `fpyga hls4ml ARGS...` is the Python package's command (python -m fpyga.hls4ml): hls4ml is a
// Python library. The interpreter is the one the build was configured with, or $FPYGA_PYTHON.
int cmd_hls4ml(const std::vector<std::string>& args) {
  const char* env = std::getenv("FPYGA_PYTHON");
  const std::string python = env && *env ? env : FPYGA_PYTHON_EXECUTABLE;
  if (python.empty())
    throw fpyga::error("fpyga hls4ml needs Python: this build was configured without one; set "
                       "FPYGA_PYTHON to the interpreter that has fpyga and hls4ml installed");
  const auto spawn = [&](std::vector<std::string> argv) {
    std::vector<char*> c;
    for (auto& a : argv) c.push_back(a.data());
    c.push_back(nullptr);
    pid_t pid = 0;
    if (const int rc = posix_spawnp(&pid, python.c_str(), nullptr, nullptr, c.data(), environ))
      throw fpyga::error("cannot run Python '" + python + "' (" + std::strerror(rc) +
                         "); set FPYGA_PYTHON to the interpreter that has fpyga and hls4ml");
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
      if (errno != EINTR) throw fpyga::error("waiting for Python failed: " + std::string(std::strerror(errno)));
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  };
  // Checked first, so a missing package gets this message instead of a traceback.
  const int found = spawn({python, "-c",
                           "import importlib.util, sys\n"
                           "try:\n"
                           "    found = importlib.util.find_spec('fpyga.hls4ml') is not None\n"
                           "except Exception as e:\n"
                           "    print(f'{type(e).__name__}: {e}', file=sys.stderr)\n"
                           "    found = False\n"
                           "sys.exit(0 if found else 3)\n"});
  if (found != 0)
    throw fpyga::error("Python '" + python + "' cannot import fpyga.hls4ml" +
                       (found == 3 ? "" : " (exit status " + std::to_string(found) + ")") +
                       "; install fpyga into it, or set FPYGA_PYTHON to an interpreter that has "
                       "it");
  std::vector<std::string> argv = {python, "-m", "fpyga.hls4ml"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::fflush(stdout);
  return spawn(argv);
}

int cmd_devices(bool json) {
  const auto devs = fpyga::devices();
  const auto backends = fpyga::backends();
  if (json) {
    auto out = nlohmann::json::object();
    auto& list = out["devices"] = nlohmann::json::array();
    for (const auto& d : devs)
      list.push_back({{"spec", d.spec()},
                      {"backend", d.backend()},
                      {"index", d.index()},
                      {"name", d.name()},
                      {"bdf", d.bdf()},
                      {"shell", d.shell()}});
    auto& bs = out["backends"] = nlohmann::json::array();
    for (const auto& b : backends)
      bs.push_back({{"name", b.name},
                    {"hardware", b.hardware},
                    {"available", b.available},
                    {"reason", b.reason},
                    {"plugin", b.plugin}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << std::left << std::setw(8) << "BACKEND" << std::setw(7) << "INDEX"
            << "NAME\n";
  std::size_t hw_devices = 0;
  for (const auto& d : devs) {
    std::cout << std::setw(8) << d.backend() << std::setw(7) << d.index() << d.name();
    if (!d.bdf().empty()) std::cout << "  bdf " << d.bdf();
    if (!d.shell().empty()) std::cout << "  shell " << d.shell();
    std::cout << "\n";
    if (d.backend() != "emu") ++hw_devices;
  }
  std::cout << std::right << "\nBackends:\n";
  bool hardware = false;
  for (const auto& b : backends) {
    hardware = hardware || (b.name != "emu" && b.available);
    std::cout << "  " << b.name << ": "
              << (b.available ? "available" + (b.plugin.empty() ? std::string(" (built in)")
                                                                : " (" + b.plugin + ")")
                              : "not available: " + b.reason)
              << "\n";
  }
  if (hw_devices == 0) {
    std::cout << "\nNo hardware devices found";
    if (hardware)
      std::cout << " (xrt needs XILINX_XRT and a card or XCL_EMULATION_MODE, opencl an ICD with a "
                   "device)";
    std::cout << ".\nThe emu device runs sw_emu xclbins on the CPU.\n";
  }
  return 0;
}

/// Edit distance, for "did you mean" (subcommand names are short).
std::size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1u : 0u)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// Names the first word that is not a subcommand where one is expected (CLI11 says only "The
/// following argument was not expected" or "A subcommand is required"), with the nearest
/// subcommand. Returns "" when the words are fine. Only commands without options that take a
/// value come before a subcommand here, so every non-option word there is meant as one.
std::string unknown_subcommand(const CLI::App& app, int argc, char** argv) {
  const CLI::App* at = &app;
  std::string path = "fpyga";
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") return {};
    if (!word.empty() && word[0] == '-') continue;
    const auto subs = at->get_subcommands([](const CLI::App*) { return true; });
    if (subs.empty()) return {};
    const CLI::App* next = nullptr;
    std::string nearest, names;
    std::size_t best = 3;  // suggest only names within two edits, or that start with the word
    for (const auto* s : subs) {
      const std::string& name = s->get_name();
      names += (names.empty() ? "" : ", ") + name;
      if (name == word) next = s;
      const std::size_t d = name.rfind(word, 0) == 0 ? 0 : distance(word, name);
      if (d < best) {
        best = d;
        nearest = name;
      }
    }
    if (!next)
      return "'" + word + "' is not a " + path + " subcommand" +
             (nearest.empty() ? "" : " (did you mean '" + nearest + "'?)") + "; the subcommands are " +
             names + ". Run '" + path + " --help' for more information.";
    at = next;
    path += " " + word;
    if (at->get_subcommands([](const CLI::App*) { return true; }).empty()) return {};
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fpyga: host runtime for FPGA accelerator cards (AWS F1, Alveo)", "fpyga"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fpyga " FPYGA_VERSION);

  auto* xcl = app.add_subcommand("xclbin", "Inspect or build xclbin files");
  xcl->require_subcommand(1);

  std::string info_file;
  bool info_json = false;
  auto* info =
      xcl->add_subcommand("info", "Describe an xclbin or awsxclbin (like xclbinutil --info)");
  info->add_option("FILE", info_file, "xclbin or awsxclbin")->required();
  info->add_flag("--json", info_json, "Print the stable JSON description (see docs/xclbin.md)");

  std::string pack_desc, pack_bits, pack_out;
  auto* pack = xcl->add_subcommand("pack", "Build an xclbin from a JSON description");
  pack->add_option("--json", pack_desc, "JSON description (see docs/xclbin.md)")->required();
  pack->add_option("--bitstream", pack_bits,
                   "BITSTREAM payload (an ELF .so makes an sw_emu xclbin)");
  pack->add_option("-o,--output", pack_out, "Output xclbin")->required();

  bool devices_json = false;
  auto* devices = app.add_subcommand("devices", "List the devices each backend sees");
  devices->add_flag("--json", devices_json, "Print devices and backends as JSON");
#ifdef FPYGA_WITH_SERVE
  fpyga::serve::cli_options serve_opts;
  auto* serve = fpyga::serve::add_command(app, serve_opts);
#endif

  auto* hls4ml = app.add_subcommand(
      "hls4ml", "Build, run or export hls4ml networks (python -m fpyga.hls4ml; --help there)");
  hls4ml->prefix_command();  // everything after `hls4ml` goes to Python as is, --help included
  hls4ml->set_help_flag();
  hls4ml->allow_extras();

  if (const auto why = unknown_subcommand(app, argc, argv); !why.empty()) {
    std::cerr << "fpyga: error: " << why << "\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, as command-line tools do (CLI11's
    // own codes, 106 or 109, look like failures of the work itself).
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  try {
    if (info->parsed()) return cmd_info(info_file, info_json);
    if (pack->parsed()) return cmd_pack(pack_desc, pack_bits, pack_out);
    if (devices->parsed()) return cmd_devices(devices_json);
#ifdef FPYGA_WITH_SERVE
    if (serve->parsed()) return fpyga::serve::run_command(serve_opts);
#endif
    if (hls4ml->parsed()) return cmd_hls4ml(hls4ml->remaining());
  } catch (const std::exception& e) {
    std::cerr << "fpyga: error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}
