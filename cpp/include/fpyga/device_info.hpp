// What a device reports about itself: sensors, clocks, memory use per bank. Every value says
// where it comes from; what nobody measured is absent (std::nullopt, an empty list), never a
// made-up number.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fpyga/xclbin.hpp"

namespace fpyga {

class device;
class memory;

/// One power rail as the runtime reports it (XRT's `power_rails`).
struct rail_reading {
  std::string name;         ///< XRT's id, e.g. "12v_pex", "vccint"
  std::string description;  ///< e.g. "12 Volts PCI Express"
  std::optional<double> volts;
  std::optional<double> amps;
  std::optional<double> watts;  ///< volts × amps, when both were measured
};

/// One temperature sensor (XRT's `thermals`).
struct temperature_reading {
  std::string name;  ///< XRT's location id, e.g. "fpga0"
  std::string description;
  double celsius = 0;
};

/// The sensors of a device, read when asked (nothing is cached).
struct sensor_readings {
  /// "xrt" when XRT's device information gave at least one value; "" when nothing was measured.
  std::string source;
  /// Why nothing (or not everything) was measured: "the emu device has no sensors", XRT's own
  /// message on its noop shim, ...; "" when every value XRT lists was read.
  std::string note;
  std::optional<double> power_watts;  ///< board power (XRT's power_consumption_watts)
  std::vector<rail_reading> rails;    ///< rails that gave a voltage or a current
  std::vector<temperature_reading> temperatures;
};

/// One clock of the loaded xclbin.
struct clock_reading {
  std::string name;
  clock_type type = clock_type::unused;
  unsigned frequency_mhz = 0;
  /// "xclbin": CLOCK_FREQ_TOPOLOGY, the frequency the design was built for (XRT 2.13's native
  /// API has no per-clock run-time value).
  std::string source;
};

/// Device memory in use in one bank.
struct memory_usage {
  unsigned index = 0;  ///< MEM_TOPOLOGY index
  std::string tag;
  std::uint64_t used_bytes = 0;
  std::uint64_t buffers = 0;
  /// Where the numbers come from: "emu" (emu's bank allocator: the bytes it holds, in 4 KiB
  /// granules, and its live buffers), "xrt" (XRT's memory report on a card: allocated bytes and
  /// buffer objects of every process), or "fpyga" (fpyga's own count of the buffers this process
  /// holds in the bank, where the runtime reports nothing: XRT's noop shim, OpenCL).
  std::string source;
};

/// Whether `dev` loads xclbins (emu, XRT, Xilinx's OpenCL); false for OpenCL devices that build
/// OpenCL C sources only (PoCL, GPUs).
bool loads_xclbin(const device& dev);

/// Reads the sensors of `dev` now. Never throws for a runtime that measures nothing: the result
/// is then empty, with `note` saying why.
sensor_readings read_sensors(const device& dev);

/// The clocks of the xclbin loaded on `dev` (empty when nothing is loaded, or when the xclbin has
/// no CLOCK_FREQ_TOPOLOGY, as sw_emu builds).
std::vector<clock_reading> clocks(const device& dev);

/// The highest clock frequency the runtime reports for `dev` (XRT on a card); nullopt elsewhere.
std::optional<unsigned long> max_clock_frequency_mhz(const device& dev);

/// Device memory in use in bank `mem` now.
/// @throws error when its xclbin was unloaded.
memory_usage usage(const memory& mem);

/// usage() of every bank of the xclbin loaded on `dev` (empty when nothing is loaded).
std::vector<memory_usage> memory_usage_of(const device& dev);

}  // namespace fpyga
