// What the server knows about one model, independent of any protocol: its tensors as clients see
// them, its batching limits and policy. Filled from the network description an xclbin carries,
// then overridden by a Triton-style config.pbtxt when the model directory has one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fpyga {
struct network_info;
}

namespace fpyga::serve {

/// One input or output as the protocol shows it (the network's ap_fixed types stay inside).
struct tensor_spec {
  std::string name;
  std::string datatype = "FP32";   ///< KServe v2 spelling
  std::vector<std::int64_t> dims;  ///< one sample's shape, without the batch extent

  /// Values per sample.
  std::size_t size() const;
};

struct model_config {
  std::string name;
  std::string platform = "fpyga";
  /// Largest batch one request (and one formed batch) may have; 0: requests carry no batch
  /// extent and hold exactly one sample.
  std::size_t max_batch_size = 1024;
  std::vector<tensor_spec> inputs;
  std::vector<tensor_spec> outputs;
  /// Dynamic batching: requests queued together run as one batch.
  bool dynamic_batching = true;
  std::vector<std::size_t> preferred_batch_sizes;
  /// How long a batch that is not yet at a preferred size waits for more requests.
  std::uint64_t max_queue_delay_us = 0;
  /// Devices the model runs on at most (one instance per device); 0: every device it is given.
  std::size_t instance_count = 0;
  /// Requests waiting at most; more are refused as "queue full".
  std::size_t max_queue_size = 4096;

  /// The configuration a model built by fpyga.hls4ml.build gets with no config.pbtxt.
  static model_config from_network(std::string_view name, const network_info& net);
  /// Applies a config.pbtxt over this one and checks it against the network.
  /// @throws value_error naming the file, the field and what was expected.
  void apply_pbtxt(std::string_view text, std::string_view file, const network_info& net);
};

}  // namespace fpyga::serve
