// The description of a neural network an xclbin carries (a USER_METADATA section named
// "fpyga_network", UTF-8 JSON, schema "fpyga.network/1"): its input and output tensors with
// their ap_fixed types, and which kernels run it through which interface. A host needs nothing
// but the xclbin to feed the network (fpyga::nn_model reads it). Schema in docs/xclbin.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fpyga/fixed.hpp"

namespace fpyga {

struct xclbin;

/// How the network's kernels take their data.
enum class network_interface : std::uint8_t {
  /// fpyga's wrapper: `batch(const in_t* in, out_t* out, int n)` runs n samples (in holds
  /// n * n_inputs values, out n * n_outputs), `single(const in_t* in, out_t* out)` one; each value
  /// is the raw bits of its ap_fixed type in a little-endian container of
  /// fixed_format::storage_bytes() bytes (what to_fixed(..., out_bytes = storage_bytes()) writes).
  fpyga_batch,
  /// hls4ml VivadoAccelerator's Alveo kernel `krnl_rtl(in, out, in_size, out_size)`: float32
  /// buffers, sizes in elements (n * n_inputs, n * n_outputs); the kernel converts.
  hls4ml_axi,
};

std::string_view to_string(network_interface i);

/// One input or output tensor of the network.
struct tensor_info {
  std::string name;
  std::vector<std::size_t> shape;  ///< of one sample, every extent positive
  fixed_format type;

  /// Values per sample: the product of the shape.
  std::size_t size() const;
  bool operator==(const tensor_info&) const = default;
};

/// The network description of an xclbin ("fpyga.network/1").
struct network_info {
  /// The schema string the JSON carries.
  static constexpr std::string_view schema = "fpyga.network/1";
  /// Name of the USER_METADATA section holding it.
  static constexpr std::string_view section_name = "fpyga_network";

  std::string name;
  std::string producer;          ///< e.g. "hls4ml" ("" when not given)
  std::string producer_version;  ///< e.g. "1.3.0" ("" when not given)
  std::string io_type;           ///< "io_parallel" or "io_stream"
  network_interface interface = network_interface::fpyga_batch;
  std::string single_kernel;  ///< fpyga_batch: the one-sample kernel ("" when there is none)
  std::string batch_kernel;   ///< fpyga_batch: the n-sample kernel
  /// fpyga_batch: hls4ml's C simulation as an n-sample kernel beside a fast batch kernel
  /// (fpyga.hls4ml's fast path; "" when there is none)
  std::string batch_csim_kernel;
  std::string axi_kernel;  ///< hls4ml_axi: the krnl_rtl-style kernel
  std::vector<tensor_info> inputs;
  std::vector<tensor_info> outputs;

  /// Values per sample over every input (output) tensor.
  std::size_t n_inputs() const;
  std::size_t n_outputs() const;
  /// The kernel whose compute units run batches: batch_kernel or axi_kernel.
  const std::string& run_kernel() const;

  /// Parses and checks the JSON (schema, required fields, positive shapes, types that
  /// fixed_format::parse accepts, kernels named for the interface; unknown fields are refused).
  /// @throws value_error "network description: <field>: <problem>".
  static network_info from_json(std::string_view json_text);
  /// Checks that the kernels it names exist in `x` with the interface's arguments (count,
  /// kinds, element types where the metadata gives an ap_* or plain type).
  /// @throws value_error naming the kernel and argument.
  void check_kernels(const xclbin& x) const;
  /// The description of `x`, or nullopt when it has none.
  /// @throws xclbin_error naming the file, the section and the field for a malformed one.
  static std::optional<network_info> of(const xclbin& x);
  /// Canonical JSON (types spelled by fixed_format::to_string); `indent` < 0 for one line.
  std::string to_json(int indent = -1) const;

  bool operator==(const network_info&) const = default;
};

}  // namespace fpyga
