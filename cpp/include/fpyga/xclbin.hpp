// The xclbin container (XRT's `struct axlf`, magic "xclbin2"): read, inspect and write, with no
// XRT needed. Every length, offset, count and string of a file is bounds-checked; a bad file
// raises fpyga::xclbin_error naming the file, the section and the problem.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fpyga {

/// Build target recorded in the header (`m_mode`).
enum class xclbin_mode : std::uint16_t {
  flat = 0,
  pr = 1,
  tandem_stage2 = 2,
  tandem_stage2_with_pr = 3,
  hw_emu = 4,
  sw_emu = 5,
  hw_emu_pr = 6,
};

/// Section kinds (`axlf_section_kind`).
enum class section_kind : std::uint32_t {
  bitstream = 0,
  clearing_bitstream = 1,
  embedded_metadata = 2,
  firmware = 3,
  debug_data = 4,
  sched_firmware = 5,
  mem_topology = 6,
  connectivity = 7,
  ip_layout = 8,
  debug_ip_layout = 9,
  design_check_point = 10,
  clock_freq_topology = 11,
  mcs = 12,
  bmc = 13,
  build_metadata = 14,
  keyvalue_metadata = 15,
  user_metadata = 16,
  dna_certificate = 17,
  pdi = 18,
  bitstream_partial_pdi = 19,
  partition_metadata = 20,
  emulation_data = 21,
  system_metadata = 22,
  soft_kernel = 23,
  ask_flash = 24,
  aie_metadata = 25,
  ask_group_topology = 26,
  ask_group_connectivity = 27,
  smartnic = 28,
  aie_resources = 29,
  overlay = 30,
  vender_metadata = 31,
};

/// Memory types of MEM_TOPOLOGY entries.
enum class memory_type : std::uint8_t {
  ddr3 = 0,
  ddr4 = 1,
  dram = 2,
  streaming = 3,
  preallocated_glob = 4,
  are = 5,
  hbm = 6,
  bram = 7,
  uram = 8,
  streaming_connection = 9,
  host = 10,
  ps_kernel = 11,
};

/// IP_LAYOUT entry types.
enum class ip_type : std::uint32_t {
  mb = 0,
  kernel = 1,
  dnasc = 2,
  ddr4_controller = 3,
  mem_ddr4 = 4,
  mem_hbm = 5,
  mem_hbm_ecc = 6,
  ps_kernel = 7,
};

/// Kernel control protocol (IP_LAYOUT properties bits 8-15).
enum class control_protocol : std::uint8_t {
  ap_ctrl_hs = 0,
  ap_ctrl_chain = 1,
  ap_ctrl_none = 2,
  ap_ctrl_me = 3,
  accel_adapter = 4,
  fast_adapter = 5,
};

enum class clock_type : std::uint8_t { unused = 0, data = 1, kernel = 2, system = 3 };

/// How the host sees a kernel argument (from EMBEDDED_METADATA addressQualifier).
enum class arg_kind : std::uint8_t { scalar, global, stream };

/// One MEM_TOPOLOGY entry.
struct memory_info {
  unsigned index = 0;
  memory_type type = memory_type::ddr4;
  bool used = false;
  std::uint64_t base_address = 0;
  std::uint64_t size_bytes = 0;  ///< stored in the file in KiB
  std::string tag;
};

/// One IP_LAYOUT entry; for kernels `name` is "kernel:instance" (old files: kernel name only).
struct ip_info {
  unsigned index = 0;
  ip_type type = ip_type::kernel;
  std::string name;
  std::uint64_t base_address = 0;
  control_protocol control = control_protocol::ap_ctrl_hs;
  bool interrupt_enabled = false;
  std::uint8_t interrupt_id = 0;

  /// The part before ':' (or the whole name).
  std::string kernel_name() const;
  /// The part after ':' (or the whole name when there is no ':').
  std::string instance_name() const;
};

/// One CONNECTIVITY entry: argument `arg_index` of IP `ip_index` reaches memory `memory_index`.
struct connection {
  std::int32_t arg_index = 0;
  std::int32_t ip_index = 0;
  std::int32_t memory_index = 0;
};

/// One CLOCK_FREQ_TOPOLOGY entry.
struct clock_info {
  std::string name;
  std::uint16_t frequency_mhz = 0;
  clock_type type = clock_type::unused;
};

/// A C type as written in kernel metadata ("unsigned int const *", "ap_fixed<16, 6>", "int").
struct c_type {
  enum class category : std::uint8_t {
    void_type,
    signed_integer,    ///< char, short, int, long, long long, ap_int<N>
    unsigned_integer,  ///< unsigned ..., ap_uint<N>, bool
    floating,          ///< float, double
    signed_fixed,      ///< ap_fixed<W, I, ...>
    unsigned_fixed,    ///< ap_ufixed<W, I, ...>
    opaque,            ///< anything else (structs, hls::stream<...>)
  };
  std::string spelling;       ///< as written in the metadata
  category cat = category::opaque;
  bool pointer = false;
  bool is_const = false;
  bool arbitrary_precision = false;  ///< an ap_int/ap_uint/ap_fixed/ap_ufixed
  unsigned bits = 0;                 ///< value width (W for ap_*; 32 for int, ...)
  int integer_bits = 0;              ///< I of ap_fixed<W, I>
  unsigned quantization = 5;         ///< ap_q_mode of ap_fixed (AP_TRN = 5 in Xilinx's enum)
  unsigned overflow = 3;             ///< ap_o_mode of ap_fixed (AP_WRAP = 3)

  /// Parses a metadata type string; never throws (unknown types are `opaque`).
  static c_type parse(std::string_view spelling);
  /// Bytes a value of the pointee (for pointers) or of the scalar occupies in memory.
  std::size_t storage_bytes() const;
};

/// One kernel argument from EMBEDDED_METADATA.
struct arg_info {
  unsigned index = 0;  ///< `id`
  std::string name;
  std::string type;  ///< C type string, as in the file
  arg_kind kind = arg_kind::scalar;
  unsigned address_qualifier = 0;  ///< 0 scalar, 1 global, 2 constant, 3 local, 4 stream
  std::string port;
  std::uint64_t offset = 0;  ///< register offset in the control interface
  std::uint64_t size = 0;
  std::uint64_t host_offset = 0;
  std::uint64_t host_size = 0;
};

struct port_info {
  std::string name;
  std::string mode;  ///< "master" or "slave"
  std::uint64_t range = 0;
  unsigned data_width = 0;
};

struct instance_info {
  std::string name;
  std::uint64_t base_address = 0;  ///< addrRemap base
};

/// One kernel from EMBEDDED_METADATA.
struct kernel_info {
  std::string name;
  std::string language;
  std::string vlnv;
  std::vector<port_info> ports;
  std::vector<arg_info> args;  ///< sorted by index
  std::vector<instance_info> instances;
};

/// A section kept as bytes (kinds the library has no typed form for).
struct raw_section {
  section_kind kind = section_kind::bitstream;
  std::string name;
  std::vector<std::byte> payload;
};

/// One entry of the section table, as read.
struct section_info {
  section_kind kind = section_kind::bitstream;
  std::string name;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

/// A parsed xclbin. Plain data: the reader fills it, the writer serialises it.
/// Absent sections are empty vectors.
struct xclbin {
  // Header.
  std::array<std::uint8_t, 16> uuid{};
  std::array<std::uint8_t, 16> interface_uuid{};  ///< rom_uuid / platform + feature id
  xclbin_mode mode = xclbin_mode::flat;
  std::string platform_vbnv;
  std::uint64_t timestamp = 0;
  std::uint64_t feature_rom_timestamp = 0;
  std::uint8_t version_major = 0;
  std::uint8_t version_minor = 0;
  std::uint16_t version_patch = 0;
  std::uint16_t action_mask = 0;
  std::uint64_t unique_id = 0;
  std::string source;  ///< file name it was read from ("<memory>" otherwise); used in messages

  // Typed sections.
  std::vector<memory_info> memories;
  std::vector<ip_info> ips;
  std::vector<connection> connectivity;
  std::vector<clock_info> clocks;
  std::vector<kernel_info> kernels;  ///< from EMBEDDED_METADATA
  std::string embedded_metadata;     ///< the XML text as read (empty when written from `kernels`)
  std::string build_metadata;        ///< JSON text
  std::vector<std::byte> bitstream;
  std::vector<raw_section> other_sections;
  /// The section table of the file read, in file order (empty for an xclbin built in memory;
  /// the writer ignores it and lays out its own).
  std::vector<section_info> sections;

  /// Reads and validates a file; throws xclbin_error (and error if it cannot be opened).
  static xclbin read(const std::string& path);
  /// Parses bytes in memory; `source` names them in error messages.
  static xclbin parse(std::span<const std::byte> data, std::string_view source = "<memory>");
  /// Serialises deterministically (the same description gives the same bytes).
  std::vector<std::byte> write() const;
  void write(const std::string& path) const;

  /// "hw", "hw_emu" or "sw_emu".
  std::string target() const;
  /// The AWS image id an awsxclbin carries in BITSTREAM ("agfi-..." / "afi-..."), if any.
  std::optional<std::string> agfi() const;
  /// True when BITSTREAM is an ELF shared object (Vitis sw_emu or fpyga's kernel toolchain).
  bool bitstream_is_elf() const;
  /// uuid as 8-4-4-4-12 hex.
  std::string uuid_string() const;

  /// Looks up a kernel by name; nullptr when absent.
  const kernel_info* find_kernel(std::string_view name) const;
  /// Memory tags argument `arg_index` of IP `ip_index` is connected to.
  std::vector<unsigned> memories_of(unsigned ip_index, unsigned arg_index) const;

  /// The compute unit an IP_LAYOUT kernel entry stands for, named as XRT and PYNQ name it: the
  /// part after ':' of "kernel:instance"; in old files (SDAccel 2018 awsxclbins) whose IP_LAYOUT
  /// names only the kernel, the EMBEDDED_METADATA instance of that kernel at the entry's base
  /// address (else the one in the same position among the kernel's entries); else the whole name.
  std::string cu_instance(const ip_info& ip) const;
  /// Whether some kernel entry of IP_LAYOUT names only its kernel (no ":instance").
  bool has_bare_cu_names() const;
  /// A copy whose IP_LAYOUT kernel entries all read "kernel:instance" (cu_instance), the form
  /// XRT's runtime matches compute units by. Backends load it in place of old files.
  xclbin with_full_cu_names() const;

  /// The platform: the header's VBNV, else composed from EMBEDDED_METADATA's <platform>
  /// (old files such as SDAccel 2018.3 awsxclbins leave the header field empty).
  std::string platform_name() const;
  /// The description `fpyga xclbin info --json` prints (schema in docs/xclbin.md).
  std::string to_json(int indent = 2) const;
  /// Builds an xclbin from the JSON description `fpyga xclbin pack` takes (see docs/xclbin.md).
  /// A missing uuid is derived from the content, so the same input gives the same bytes.
  /// @throws value_error naming the field for a malformed description.
  static xclbin from_description(std::string_view json_text, std::vector<std::byte> bitstream = {});
};

/// Names as used in JSON and messages ("ddr4", "ap_ctrl_hs", "MEM_TOPOLOGY", ...).
std::string_view to_string(xclbin_mode mode);
std::string_view to_string(section_kind kind);  ///< XRT's spelling, e.g. "MEM_TOPOLOGY"
std::string_view to_string(memory_type type);
std::string_view to_string(ip_type type);
std::string_view to_string(control_protocol control);
std::string_view to_string(clock_type type);
std::string_view to_string(arg_kind kind);

/// Inverse of to_string for the names a JSON description uses; nullopt for an unknown name.
std::optional<xclbin_mode> xclbin_mode_from_string(std::string_view name);
std::optional<memory_type> memory_type_from_string(std::string_view name);
std::optional<control_protocol> control_protocol_from_string(std::string_view name);
std::optional<clock_type> clock_type_from_string(std::string_view name);
std::optional<arg_kind> arg_kind_from_string(std::string_view name);

}  // namespace fpyga
