// The AXI4-Stream side of an xclbin: which compute-unit arguments are streams, and which
// kernel-to-kernel connections (v++ `sc=` / `stream_connect`) join them. Vitis describes them
// across three sections (EMBEDDED_METADATA port modes read_only/write_only, MEM_TOPOLOGY entries
// of type STREAMING_CONNECTION, CONNECTIVITY); what a runtime needs and Vitis has no place for
// (FIFO depth, element layout) fpyga's toolchain adds in a USER_METADATA section named
// "fpyga_streams" (schema "fpyga.streams/1", see docs/kernels.md). A file without it (a real
// Vitis build) gets defaults derived from the argument types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fpyga {

struct xclbin;

/// Direction of a stream argument as the kernel sees it.
enum class stream_direction : std::uint8_t {
  input,   ///< the kernel reads it: port mode "read_only"
  output,  ///< the kernel writes it: port mode "write_only"
};

std::string_view to_string(stream_direction d);  ///< "input" / "output"

/// What one element of a stream holds. For `hls::stream<ap_axiu<W, U, TI, TD>>` (`ap_axis`
/// signed) the TDATA width W and the side channels (TKEEP/TSTRB of W/8 bits, TLAST, TUSER of
/// U bits, TID of TI bits, TDEST of TD bits); for `hls::stream<T>` of a plain or ap_* type the
/// value width only.
struct stream_element {
  std::string type;        ///< as in the source / metadata: "ap_axiu<32, 0, 0, 0>", "int", ...
  unsigned data_bits = 0;  ///< TDATA width (W; the bit width of T for plain streams)
  bool axis = false;       ///< an ap_axiu/ap_axis (side channels present: keep, strb, last)
  bool is_signed = false;  ///< ap_axis, or a signed plain T
  unsigned user_bits = 0;  ///< U
  unsigned id_bits = 0;    ///< TI
  unsigned dest_bits = 0;  ///< TD
  /// TDATA bytes, (data_bits + 7) / 8: the "element width in bytes" fpyga_streams records. The
  /// kernel's C++ object may be larger (ap_* padding, side channels); emu's FIFOs move whole
  /// objects of the size the compiled kernel reports.
  std::size_t bytes() const { return (data_bits + 7) / 8; }

  /// Parses the element out of a type string: "ap_axiu<32,0,0,0>", "hls::stream<ap_axiu<32, 0,
  /// 0, 0> >&", "stream<ap_axiu<32, 0, 0, 0>, 0>&" (Vitis's spelling), "int", "ap_uint<24>".
  /// Unknown types give data_bits 0 (callers treat that as "unknown width").
  static stream_element parse(std::string_view type);
  /// Same width and side channels (what a connection requires of its two ends).
  bool compatible(const stream_element& other) const;
  bool operator==(const stream_element&) const = default;
};

/// One stream argument of one compute unit.
struct stream_port {
  unsigned ip_index = 0;   ///< IP_LAYOUT entry of the compute unit
  std::string kernel;      ///< kernel name, "krnl_a"
  std::string instance;    ///< compute unit name, "krnl_a_1"
  unsigned arg_index = 0;  ///< argument id in EMBEDDED_METADATA
  std::string arg;         ///< argument name, "out"
  stream_direction direction = stream_direction::input;
  stream_element element;
  /// Index into stream_layout::connections of the kernel-to-kernel stream it is joined to;
  /// nullopt for a host stream (connected to a MEM_TOPOLOGY entry of type `streaming`, which
  /// only platforms with a streaming DMA have).
  std::optional<std::size_t> connection;
  /// MEM_TOPOLOGY index of the memory it is connected to (STREAMING_CONNECTION or STREAMING).
  unsigned memory_index = 0;

  /// "instance.arg", as PYNQ names stream ends ("krnl_a_1.out").
  std::string name() const { return instance + "." + arg; }
};

/// One kernel-to-kernel stream: a MEM_TOPOLOGY STREAMING_CONNECTION entry and the two
/// CONNECTIVITY entries mapping the producer's and the consumer's argument to it.
struct stream_connection {
  unsigned memory_index = 0;  ///< the MEM_TOPOLOGY entry
  std::string tag;            ///< its tag, "dc_0"
  std::size_t source = 0;     ///< index into stream_layout::ports: the producer (an output)
  std::size_t sink = 0;       ///< index into stream_layout::ports: the consumer (an input)
  std::size_t depth = 0;      ///< FIFO depth in elements, at least 1
};

/// The streams of an xclbin, derived and checked.
struct stream_layout {
  /// Name of the USER_METADATA section with fpyga's additions, and the schema it carries.
  static constexpr std::string_view section_name = "fpyga_streams";
  static constexpr std::string_view schema = "fpyga.streams/1";
  /// Depth of a connection whose xclbin gives none (a Vitis build: v++ keeps sc='s depth in the
  /// hardware, not in the xclbin).
  static constexpr std::size_t default_depth = 16;

  std::vector<stream_port> ports;              ///< IP_LAYOUT order, then argument order
  std::vector<stream_connection> connections;  ///< MEM_TOPOLOGY order

  bool empty() const { return ports.empty(); }
  /// The port `arg` of compute unit `instance`; nullptr when it is not a stream port.
  const stream_port* find(std::string_view instance, std::string_view arg) const;
  /// Stream ports of one compute unit (IP_LAYOUT index), in argument order.
  std::vector<const stream_port*> ports_of(unsigned ip_index) const;

  /// Derives the layout of `x` and checks it: every stream argument of every compute unit is
  /// connected to exactly one streaming memory; every STREAMING_CONNECTION joins exactly one
  /// output to one input of equal element width and side channels; depths are at least 1; the
  /// fpyga_streams section, when present, is well formed and names existing ports.
  /// @throws xclbin_error naming the file, the kernels/compute units, ports and the problem.
  static stream_layout of(const xclbin& x);
};

}  // namespace fpyga
