// Counters the server keeps for Prometheus (/metrics): per model requests, failures, queue and
// compute time and the sizes of the batches it ran; per device the time it was busy. Updated
// with relaxed atomics on the request path; rendered as Prometheus' text format.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace fpyga::serve {

struct model_metrics {
  /// Batch-size histogram buckets: le 1, 2, 4, ..., 2^15, +Inf.
  static constexpr std::size_t n_buckets = 17;

  std::atomic<std::uint64_t> request_success{0};
  std::atomic<std::uint64_t> request_failure{0};
  std::atomic<std::uint64_t> inference_count{0};  ///< samples
  std::atomic<std::uint64_t> execution_count{0};  ///< batches run
  std::atomic<std::uint64_t> success_ns{0};       ///< time answered requests spent in the scheduler
  std::atomic<std::uint64_t> failure_ns{0};
  std::atomic<std::uint64_t> queued_requests{0};  ///< requests that reached a batch
  std::atomic<std::uint64_t> queue_ns{0};
  std::atomic<std::uint64_t> compute_ns{0};
  std::atomic<std::uint64_t> last_inference_ms{0};  ///< system clock, ms since the epoch
  std::array<std::atomic<std::uint64_t>, n_buckets> batch_buckets{};  ///< not cumulative
  std::atomic<std::uint64_t> batch_size_sum{0};

  void observe_batch(std::size_t samples);
  /// A request ended after `ns` in the scheduler: counts it as a success or a failure.
  void observe_request(bool ok, std::uint64_t ns);
};

class metrics {
 public:
  /// The counters of a model (created at first use; the reference stays valid).
  model_metrics& model(const std::string& name, const std::string& version);
  /// The busy-time counter (ns) of a device, by its spec.
  std::atomic<std::uint64_t>& device_busy_ns(const std::string& spec);
  /// Prometheus text exposition format 0.0.4.
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<model_metrics>> models_;
  std::map<std::string, std::unique_ptr<std::atomic<std::uint64_t>>> devices_;
};

}  // namespace fpyga::serve
