#include "metrics.hpp"

#include <bit>
#include <chrono>
#include <sstream>

namespace fpyga::serve {

void model_metrics::observe_batch(std::size_t samples) {
  // Bucket i holds batches of at most 2^i samples (the last: any size).
  std::size_t i = samples <= 1 ? 0 : std::bit_width(samples - 1);
  if (i >= n_buckets - 1) i = n_buckets - 1;
  batch_buckets[i].fetch_add(1, std::memory_order_relaxed);
  batch_size_sum.fetch_add(samples, std::memory_order_relaxed);
}

void model_metrics::observe_request(bool ok, std::uint64_t ns) {
  (ok ? request_success : request_failure).fetch_add(1, std::memory_order_relaxed);
  (ok ? success_ns : failure_ns).fetch_add(ns, std::memory_order_relaxed);
  if (ok) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    last_inference_ms.store(static_cast<std::uint64_t>(now.count()), std::memory_order_relaxed);
  }
}

model_metrics& metrics::model(const std::string& name, const std::string& version) {
  std::lock_guard lk(mu_);
  auto& m = models_[{name, version}];
  if (!m) m = std::make_unique<model_metrics>();
  return *m;
}

std::atomic<std::uint64_t>& metrics::device_busy_ns(const std::string& spec) {
  std::lock_guard lk(mu_);
  auto& d = devices_[spec];
  if (!d) d = std::make_unique<std::atomic<std::uint64_t>>(0);
  return *d;
}

namespace {

// Label values escape backslash, quote and newline.
std::string label(const std::string& v) {
  std::string s;
  for (char c : v) {
    if (c == '\\' || c == '"') s += '\\';
    if (c == '\n') {
      s += "\\n";
      continue;
    }
    s += c;
  }
  return s;
}

}  // namespace

std::string metrics::render() const {
  std::lock_guard lk(mu_);
  std::ostringstream o;
  const auto counter = [&](const char* name, const char* help, auto field) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n";
    for (const auto& [key, m] : models_)
      o << name << "{model=\"" << label(key.first) << "\",version=\"" << label(key.second) << "\"} "
        << field(*m) << '\n';
  };
  const auto load = [](const std::atomic<std::uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
  };
  counter("fpyga_inference_request_success", "Successful inference requests",
          [&](const model_metrics& m) { return load(m.request_success); });
  counter("fpyga_inference_request_failure", "Failed inference requests (any reason)",
          [&](const model_metrics& m) { return load(m.request_failure); });
  counter("fpyga_inference_count", "Samples inferred",
          [&](const model_metrics& m) { return load(m.inference_count); });
  counter("fpyga_inference_exec_count", "Batches run on a device",
          [&](const model_metrics& m) { return load(m.execution_count); });
  counter("fpyga_inference_queue_duration_us", "Time requests waited in the queue (us)",
          [&](const model_metrics& m) { return load(m.queue_ns) / 1000; });
  counter("fpyga_inference_compute_duration_us", "Time batches ran, conversion included (us)",
          [&](const model_metrics& m) { return load(m.compute_ns) / 1000; });

  o << "# HELP fpyga_batch_size Samples per batch run\n# TYPE fpyga_batch_size histogram\n";
  for (const auto& [key, m] : models_) {
    const std::string labels =
        "model=\"" + label(key.first) + "\",version=\"" + label(key.second) + "\"";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < model_metrics::n_buckets; ++i) {
      cumulative += load(m->batch_buckets[i]);
      o << "fpyga_batch_size_bucket{" << labels << ",le=\""
        << (i + 1 == model_metrics::n_buckets ? std::string("+Inf")
                                              : std::to_string(std::uint64_t{1} << i))
        << "\"} " << cumulative << '\n';
    }
    o << "fpyga_batch_size_sum{" << labels << "} " << load(m->batch_size_sum) << '\n';
    o << "fpyga_batch_size_count{" << labels << "} " << cumulative << '\n';
  }
  o << "# HELP fpyga_device_busy_us Time each device ran batches (us)\n"
       "# TYPE fpyga_device_busy_us counter\n";
  for (const auto& [spec, ns] : devices_)
    o << "fpyga_device_busy_us{device=\"" << label(spec) << "\"} " << load(*ns) / 1000 << '\n';
  return o.str();
}

}  // namespace fpyga::serve
