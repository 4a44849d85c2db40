// config.pbtxt is protobuf text format of Triton's ModelConfig: read with protobuf's own text
// parser into the protocol's message, then copied into the core's model_config, so the proto
// types stay in this file.
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>

#include "fpyga/error.hpp"
#include "fpyga/network.hpp"
#include "kserve_v2.pb.h"
#include "model_config.hpp"

namespace fpyga::serve {

namespace {

class collect_errors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (text.empty())
      text = "line " + std::to_string(line + 1) + " column " + std::to_string(column + 1) + ": " +
             message;
  }
  std::string text;
};

std::string dims_text(const std::vector<std::int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::size_t product(const std::vector<std::int64_t>& dims) {
  std::size_t n = 1;
  for (auto d : dims) n *= static_cast<std::size_t>(d);
  return n;
}

}  // namespace

void model_config::apply_pbtxt(std::string_view text, std::string_view file,
                               const network_info& net) {
  const std::string where(file);
  inference::ModelConfig pc;
  google::protobuf::TextFormat::Parser parser;
  collect_errors errors;
  parser.RecordErrorsTo(&errors);
  // Triton fields fpyga does not use (backend parameters, optimisation, warm-up...) are allowed
  // and ignored, so a Triton repository's config reads as it is.
  parser.AllowUnknownField(true);
  if (!parser.ParseFromString(std::string(text), &pc))
    throw value_error(where + ": not a valid model configuration: " + errors.text);
  const auto bad = [&](const std::string& field, const std::string& what) {
    return value_error(where + ": " + field + ": " + what);
  };

  if (!pc.name().empty() && pc.name() != name)
    throw bad("name", "'" + pc.name() + "' differs from the model's directory name '" + name + "'");
  if (!pc.backend().empty() && pc.backend() != "fpyga")
    throw bad("backend", "'" + pc.backend() + "' is not served here (expected \"fpyga\" or none)");
  if (pc.max_batch_size() < 0) throw bad("max_batch_size", "must be 0 or positive");
  max_batch_size = static_cast<std::size_t>(pc.max_batch_size());

  const auto apply_tensors = [&](const char* field, const auto& given,
                                 std::vector<tensor_spec>& ours,
                                 const std::vector<tensor_info>& net_tensors) {
    if (given.empty()) return;
    if (given.size() != static_cast<int>(net_tensors.size()))
      throw bad(field, std::to_string(given.size()) + " given, the network has " +
                           std::to_string(net_tensors.size()));
    for (int i = 0; i < given.size(); ++i) {
      const auto& g = given[i];
      auto& t = ours[static_cast<std::size_t>(i)];
      const std::string f = std::string(field) + " '" + g.name() + "'";
      if (g.data_type() != inference::TYPE_FP32)
        throw bad(f, "data_type " + inference::DataType_Name(g.data_type()) +
                         " is not served (expected TYPE_FP32: values convert to the network's " +
                         net_tensors[static_cast<std::size_t>(i)].type.to_string() + " here)");
      std::vector<std::int64_t> dims(g.dims().begin(), g.dims().end());
      if (dims.empty() || std::any_of(dims.begin(), dims.end(), [](auto d) { return d <= 0; }))
        throw bad(f, "dims " + dims_text(dims) + " must be positive");
      if (product(dims) != t.size())
        throw bad(f, "dims " + dims_text(dims) + " hold " + std::to_string(product(dims)) +
                         " values, the network's tensor " + dims_text(t.dims) + " " +
                         std::to_string(t.size()));
      if (!g.name().empty()) t.name = g.name();
      t.dims = std::move(dims);
    }
  };
  apply_tensors("input", pc.input(), inputs, net.inputs);
  apply_tensors("output", pc.output(), outputs, net.outputs);

  dynamic_batching = pc.has_dynamic_batching();
  preferred_batch_sizes.clear();
  max_queue_delay_us = 0;
  if (pc.has_dynamic_batching()) {
    const auto& db = pc.dynamic_batching();
    for (auto p : db.preferred_batch_size()) {
      if (p <= 0 || static_cast<std::size_t>(p) > max_batch_size)
        throw bad("dynamic_batching.preferred_batch_size",
                  std::to_string(p) + " must be in 1.." + std::to_string(max_batch_size));
      preferred_batch_sizes.push_back(static_cast<std::size_t>(p));
    }
    max_queue_delay_us = db.max_queue_delay_microseconds();
    if (max_queue_delay_us > 10'000'000)
      throw bad("dynamic_batching.max_queue_delay_microseconds", "over 10 s");
  }
  instance_count = 0;
  for (const auto& g : pc.instance_group()) {
    if (g.count() < 0) throw bad("instance_group.count", "must be positive");
    instance_count += static_cast<std::size_t>(g.count());
  }
}

}  // namespace fpyga::serve
