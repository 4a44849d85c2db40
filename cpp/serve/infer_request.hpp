// A request as every frontend hands it to the core: the model's inputs, already decoded from the
// protocol, checked against the model here, so the rules and their messages are the same for
// gRPC and HTTP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model_repository.hpp"
#include "scheduler.hpp"

namespace fpyga::serve {

struct infer_input {
  std::string name;
  std::string datatype;
  std::vector<std::int64_t> shape;
};

/// The model version a request names, ready to run.
/// @throws request_error: not_found for an unknown model or version, unavailable when it is not
///         ready.
std::shared_ptr<const model_version> resolve(const model_repository& repo, const std::string& name,
                                             const std::string& version);

/// Checks a request's input tensors against the model and returns its number of samples.
/// @throws request_error invalid_argument naming the tensor and what was expected.
std::size_t check_inputs(const model_version& m, const std::vector<infer_input>& inputs);

/// Checks the output names a request asks for (empty: all).
void check_outputs(const model_version& m, const std::vector<std::string>& names);

/// The shape of the output for `rows` samples.
std::vector<std::int64_t> output_shape(const model_version& m, std::size_t rows);

/// The deadline of a request: the transport's (gRPC's client deadline; none over HTTP) or, when
/// earlier, the one its "timeout" parameter sets (microseconds from now, as Triton reads it;
/// 0: none).
/// @throws request_error invalid_argument for a negative timeout.
clock::time_point request_deadline(std::int64_t timeout_us, clock::time_point transport);

/// The shape a model's tensor is shown with (-1 for the batch extent).
std::vector<std::int64_t> shown_shape(const model_config& c, const tensor_spec& t);

}  // namespace fpyga::serve
