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

/// One model version's statistics (Triton's statistics extension), read from its counters.
struct model_statistics {
  std::string name, version;
  std::uint64_t last_inference_ms = 0;  ///< system clock, ms since the epoch; 0: never
  std::uint64_t inference_count = 0;    ///< samples run
  std::uint64_t execution_count = 0;    ///< batches run
  std::uint64_t success_count = 0, success_ns = 0;
  std::uint64_t fail_count = 0, fail_ns = 0;
  std::uint64_t queue_count = 0, queue_ns = 0;      ///< requests that reached a batch
  std::uint64_t compute_count = 0, compute_ns = 0;  ///< batches run, conversion included
};

/// The statistics of one model version (`name` given; `version` "" the served one) or of every
/// ready model (`name` "").
/// @throws request_error as resolve() does for an unknown or unready model.
std::vector<model_statistics> statistics(const model_repository& repo, const std::string& name,
                                         const std::string& version);

/// The shape a model's tensor is shown with (-1 for the batch extent).
std::vector<std::int64_t> shown_shape(const model_config& c, const tensor_spec& t);

}  // namespace fpyga::serve
