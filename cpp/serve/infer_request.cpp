#include "infer_request.hpp"

#include <algorithm>

namespace fpyga::serve {

namespace {

std::string shape_text(const std::vector<std::int64_t>& s) {
  std::string t = "[";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

std::string model_text(const model_version& m) {
  return "model '" + m.name + "' version " + std::to_string(m.version);
}

}  // namespace

std::shared_ptr<const model_version> resolve(const model_repository& repo, const std::string& name,
                                             const std::string& version) {
  auto m = repo.find(name, version);
  if (!m) {
    if (!repo.find(name))
      throw request_error(status_code::not_found, "unknown model '" + name + "'");
    std::string have;
    for (auto v : repo.versions(name)) have += (have.empty() ? "" : ", ") + std::to_string(v);
    throw request_error(status_code::not_found, "model '" + name + "' has no version '" + version +
                                                    "' (versions: " + have + ")");
  }
  if (!m->ready())
    throw request_error(status_code::unavailable, model_text(*m) + " is not ready: " + m->reason);
  return m;
}

std::vector<std::int64_t> shown_shape(const model_config& c, const tensor_spec& t) {
  std::vector<std::int64_t> s;
  if (c.max_batch_size > 0) s.push_back(-1);
  s.insert(s.end(), t.dims.begin(), t.dims.end());
  return s;
}

std::size_t check_inputs(const model_version& m, const std::vector<infer_input>& inputs) {
  const auto& c = m.config;
  const auto bad = [&](const std::string& what) {
    return request_error(status_code::invalid_argument, model_text(m) + ": " + what);
  };
  if (inputs.size() != c.inputs.size()) {
    std::string names;
    for (const auto& t : c.inputs) names += (names.empty() ? "'" : ", '") + t.name + "'";
    throw bad("expected " + std::to_string(c.inputs.size()) + " input tensor(s) (" + names +
              "), got " + std::to_string(inputs.size()));
  }
  std::size_t rows = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& in = inputs[i];
    const auto& spec = c.inputs[i];
    if (in.name != spec.name)
      throw bad("unknown input '" + in.name + "' (the model's input is '" + spec.name + "')");
    if (in.datatype != spec.datatype)
      throw bad("input '" + in.name + "' has datatype " + spec.datatype + ", got " +
                (in.datatype.empty() ? std::string("none") : in.datatype));
    std::size_t n = 1;
    bool ok;
    if (c.max_batch_size > 0) {
      ok = in.shape.size() == spec.dims.size() + 1 && in.shape[0] >= 0 &&
           std::equal(spec.dims.begin(), spec.dims.end(), in.shape.begin() + 1);
      if (ok) n = static_cast<std::size_t>(in.shape[0]);
    } else {
      ok = in.shape == spec.dims;
    }
    if (!ok)
      throw bad("input '" + in.name + "' has shape " + shape_text(shown_shape(c, spec)) + ", got " +
                shape_text(in.shape));
    if (c.max_batch_size > 0 && n > c.max_batch_size)
      throw bad("a batch of " + std::to_string(n) + " samples is over max_batch_size " +
                std::to_string(c.max_batch_size));
    if (i == 0)
      rows = n;
    else if (n != rows)
      throw bad("input '" + in.name + "' has " + std::to_string(n) + " samples, the first " +
                std::to_string(rows));
  }
  return rows;
}

void check_outputs(const model_version& m, const std::vector<std::string>& names) {
  for (const auto& n : names) {
    bool found = false;
    for (const auto& t : m.config.outputs) found = found || t.name == n;
    if (!found) {
      std::string have;
      for (const auto& t : m.config.outputs) have += (have.empty() ? "'" : ", '") + t.name + "'";
      throw request_error(status_code::invalid_argument,
                          model_text(m) + ": unknown output '" + n + "' (outputs: " + have + ")");
    }
  }
}

clock::time_point request_deadline(std::int64_t timeout_us, clock::time_point transport) {
  if (timeout_us < 0)
    throw request_error(status_code::invalid_argument,
                        "parameter 'timeout' is " + std::to_string(timeout_us) +
                            " us; expected microseconds >= 0 (0: no timeout)");
  if (timeout_us == 0) return transport;
  const auto now = clock::now();
  // Timeouts past a year are no timeout (and cannot overflow the clock).
  if (timeout_us > std::int64_t{365} * 24 * 3600 * 1000000) return transport;
  return std::min(transport, now + std::chrono::microseconds(timeout_us));
}

std::vector<model_statistics> statistics(const model_repository& repo, const std::string& name,
                                         const std::string& version) {
  std::vector<std::shared_ptr<const model_version>> models;
  if (name.empty()) {
    for (auto& m : repo.index())
      if (m->ready()) models.push_back(std::move(m));
  } else {
    models.push_back(resolve(repo, name, version));
  }
  std::vector<model_statistics> out;
  for (const auto& m : models) {
    model_statistics s;
    s.name = m->name;
    s.version = std::to_string(m->version);
    if (const model_metrics* c = m->sched ? m->sched->statistics() : nullptr) {
      const auto ld = [](const std::atomic<std::uint64_t>& a) {
        return a.load(std::memory_order_relaxed);
      };
      s.last_inference_ms = ld(c->last_inference_ms);
      s.inference_count = ld(c->inference_count);
      s.execution_count = ld(c->execution_count);
      s.success_count = ld(c->request_success);
      s.success_ns = ld(c->success_ns);
      s.fail_count = ld(c->request_failure);
      s.fail_ns = ld(c->failure_ns);
      s.queue_count = ld(c->queued_requests);
      s.queue_ns = ld(c->queue_ns);
      s.compute_count = s.execution_count;
      s.compute_ns = ld(c->compute_ns);
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::int64_t> output_shape(const model_version& m, std::size_t rows) {
  std::vector<std::int64_t> s;
  if (m.config.max_batch_size > 0) s.push_back(static_cast<std::int64_t>(rows));
  const auto& d = m.config.outputs.front().dims;
  s.insert(s.end(), d.begin(), d.end());
  return s;
}

}  // namespace fpyga::serve
