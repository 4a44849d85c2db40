#include "grpc_frontend.hpp"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "fpyga/error.hpp"
#include "infer_request.hpp"
#include "kserve_v2.grpc.pb.h"
#include "log.hpp"
#include "model_repository.hpp"

namespace fpyga::serve {

namespace {

grpc::StatusCode to_grpc(status_code c) {
  switch (c) {
    case status_code::invalid_argument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case status_code::not_found:
      return grpc::StatusCode::NOT_FOUND;
    case status_code::unavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case status_code::resource_exhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case status_code::deadline_exceeded:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case status_code::internal:
      return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::UNKNOWN;
}

// Runs a handler body, turning the core's errors into a gRPC status (the server keeps serving).
template <class F>
grpc::Status guarded(const char* rpc, F&& body) {
  try {
    body();
    return grpc::Status::OK;
  } catch (const request_error& e) {
    log_event("warn", "request failed", {{"rpc", rpc}, {"error", e.what()}});
    return grpc::Status(to_grpc(e.code()), e.what());
  } catch (const std::exception& e) {
    log_event("error", "request failed", {{"rpc", rpc}, {"error", e.what()}});
    return grpc::Status(grpc::StatusCode::INTERNAL, e.what());
  }
}

inference::DataType to_proto_type(const std::string& t) {
  if (t == "FP32") return inference::TYPE_FP32;
  if (t == "FP64") return inference::TYPE_FP64;
  return inference::TYPE_INVALID;
}

clock::time_point steady_deadline(const grpc::ServerContext& ctx) {
  const auto d = ctx.deadline();
  const auto now = std::chrono::system_clock::now();
  if (d - now > std::chrono::hours(24 * 365)) return clock::time_point::max();
  return clock::now() + std::chrono::duration_cast<clock::duration>(d - now);
}

class service final : public inference::GRPCInferenceService::Service {
 public:
  explicit service(model_repository& repo) : repo_(repo) {}

  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* r) override {
    r->set_live(true);
    return grpc::Status::OK;
  }

  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* r) override {
    r->set_ready(repo_.all_ready());
    return grpc::Status::OK;
  }

  grpc::Status ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest* q,
                          inference::ModelReadyResponse* r) override {
    const auto m = repo_.find(q->name(), q->version());
    r->set_ready(m && m->ready());
    return grpc::Status::OK;
  }

  grpc::Status ServerMetadata(grpc::ServerContext*, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse* r) override {
    r->set_name("fpyga");
    r->set_version(FPYGA_SERVE_VERSION);
    for (const char* e :
         {"model_configuration", "model_repository", "statistics", "binary_tensor_data"})
      r->add_extensions(e);
    return grpc::Status::OK;
  }

  grpc::Status ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest* q,
                             inference::ModelMetadataResponse* r) override {
    return guarded("ModelMetadata", [&] {
      const auto m = resolve(repo_, q->name(), q->version());
      r->set_name(m->name);
      for (auto v : repo_.versions(m->name)) r->add_versions(std::to_string(v));
      r->set_platform(m->config.platform);
      const auto add = [&](auto* out, const tensor_spec& t) {
        out->set_name(t.name);
        out->set_datatype(t.datatype);
        for (auto d : shown_shape(m->config, t)) out->add_shape(d);
      };
      for (const auto& t : m->config.inputs) add(r->add_inputs(), t);
      for (const auto& t : m->config.outputs) add(r->add_outputs(), t);
    });
  }

  grpc::Status ModelConfig(grpc::ServerContext*, const inference::ModelConfigRequest* q,
                           inference::ModelConfigResponse* r) override {
    return guarded("ModelConfig", [&] {
      const auto m = resolve(repo_, q->name(), q->version());
      const auto& c = m->config;
      auto* pc = r->mutable_config();
      pc->set_name(c.name);
      pc->set_platform(c.platform);
      pc->set_backend("fpyga");
      pc->set_max_batch_size(static_cast<int>(c.max_batch_size));
      for (const auto& t : c.inputs) {
        auto* i = pc->add_input();
        i->set_name(t.name);
        i->set_data_type(to_proto_type(t.datatype));
        for (auto d : t.dims) i->add_dims(d);
      }
      for (const auto& t : c.outputs) {
        auto* o = pc->add_output();
        o->set_name(t.name);
        o->set_data_type(to_proto_type(t.datatype));
        for (auto d : t.dims) o->add_dims(d);
      }
      if (c.dynamic_batching) {
        auto* db = pc->mutable_dynamic_batching();
        for (auto p : c.preferred_batch_sizes) db->add_preferred_batch_size(static_cast<int>(p));
        db->set_max_queue_delay_microseconds(c.max_queue_delay_us);
      }
      auto* g = pc->add_instance_group();
      g->set_count(static_cast<int>(m->sched->instances()));
      g->set_kind(inference::ModelInstanceGroup::KIND_MODEL);
    });
  }

  grpc::Status ModelInfer(grpc::ServerContext* ctx, const inference::ModelInferRequest* q,
                          inference::ModelInferResponse* r) override {
    return guarded("ModelInfer", [&] {
      const auto m = resolve(repo_, q->model_name(), q->model_version());
      std::vector<infer_input> inputs;
      for (const auto& t : q->inputs())
        inputs.push_back({t.name(), t.datatype(), {t.shape().begin(), t.shape().end()}});
      const std::size_t rows = check_inputs(*m, inputs);
      std::vector<std::string> wanted;
      for (const auto& o : q->outputs()) wanted.push_back(o.name());
      check_outputs(*m, wanted);

      const auto& sched = *m->sched;
      const std::size_t n_in = rows * sched.n_inputs();
      const auto bad = [&](const std::string& what) {
        return request_error(status_code::invalid_argument, "model '" + m->name + "': input '" +
                                                                q->inputs(0).name() + "' " + what);
      };
      // The values: raw bytes (little-endian float32, as the client packs them) or typed.
      const float* x = nullptr;
      std::vector<float> copy;
      if (q->raw_input_contents_size() > 0) {
        if (q->raw_input_contents_size() != q->inputs_size())
          throw bad("is given as raw_input_contents, which has " +
                    std::to_string(q->raw_input_contents_size()) + " entries for " +
                    std::to_string(q->inputs_size()) + " inputs");
        if (q->inputs(0).has_contents()) throw bad("has both contents and raw_input_contents");
        const std::string& raw = q->raw_input_contents(0);
        if (raw.size() != n_in * sizeof(float))
          throw bad("holds " + std::to_string(raw.size()) + " bytes, its shape needs " +
                    std::to_string(n_in * sizeof(float)));
        if (reinterpret_cast<std::uintptr_t>(raw.data()) % alignof(float) == 0) {
          x = reinterpret_cast<const float*>(raw.data());
        } else {
          copy.resize(n_in);
          std::memcpy(copy.data(), raw.data(), raw.size());
          x = copy.data();
        }
      } else {
        const auto& c = q->inputs(0).contents();
        if (static_cast<std::size_t>(c.fp32_contents_size()) != n_in)
          throw bad("has " + std::to_string(c.fp32_contents_size()) +
                    " values in contents.fp32_contents, its shape needs " + std::to_string(n_in));
        x = c.fp32_contents().data();
      }

      std::int64_t timeout_us = 0;
      if (const auto t = q->parameters().find("timeout"); t != q->parameters().end()) {
        const auto& p = t->second;
        if (p.parameter_choice_case() == inference::InferParameter::kInt64Param)
          timeout_us = p.int64_param();
        else if (p.parameter_choice_case() == inference::InferParameter::kUint64Param)
          timeout_us = static_cast<std::int64_t>(
              std::min<std::uint64_t>(p.uint64_param(), std::numeric_limits<std::int64_t>::max()));
        else
          throw request_error(
              status_code::invalid_argument,
              "model '" + m->name + "': parameter 'timeout' must be an integer (microseconds)");
      }
      const auto deadline = request_deadline(timeout_us, steady_deadline(*ctx));

      r->set_model_name(m->name);
      r->set_model_version(std::to_string(m->version));
      r->set_id(q->id());
      auto* out = r->add_outputs();
      out->set_name(m->config.outputs.front().name);
      out->set_datatype("FP32");
      for (auto d : output_shape(*m, rows)) out->add_shape(d);
      std::string* y = r->add_raw_output_contents();
      y->resize(rows * sched.n_outputs() * sizeof(float));
      if (reinterpret_cast<std::uintptr_t>(y->data()) % alignof(float) == 0) {
        m->sched->infer(x, rows, reinterpret_cast<float*>(y->data()), deadline);
      } else {
        std::vector<float> tmp(rows * sched.n_outputs());
        m->sched->infer(x, rows, tmp.data(), deadline);
        std::memcpy(y->data(), tmp.data(), y->size());
      }
    });
  }

  grpc::Status ModelStatistics(grpc::ServerContext*, const inference::ModelStatisticsRequest* q,
                               inference::ModelStatisticsResponse* r) override {
    return guarded("ModelStatistics", [&] {
      for (const auto& st : statistics(repo_, q->name(), q->version())) {
        auto* m = r->add_model_stats();
        m->set_name(st.name);
        m->set_version(st.version);
        m->set_last_inference(st.last_inference_ms);
        m->set_inference_count(st.inference_count);
        m->set_execution_count(st.execution_count);
        auto* i = m->mutable_inference_stats();
        const auto set = [](inference::StatisticDuration* d, std::uint64_t count,
                            std::uint64_t ns) {
          d->set_count(count);
          d->set_ns(ns);
        };
        set(i->mutable_success(), st.success_count, st.success_ns);
        set(i->mutable_fail(), st.fail_count, st.fail_ns);
        set(i->mutable_queue(), st.queue_count, st.queue_ns);
        set(i->mutable_compute_infer(), st.compute_count, st.compute_ns);
      }
    });
  }

  grpc::Status RepositoryIndex(grpc::ServerContext*, const inference::RepositoryIndexRequest* q,
                               inference::RepositoryIndexResponse* r) override {
    for (const auto& m : repo_.index()) {
      if (q->ready() && !m->ready()) continue;
      auto* e = r->add_models();
      e->set_name(m->name);
      if (m->xclbin.has_filename()) e->set_version(std::to_string(m->version));
      e->set_state(m->state);
      e->set_reason(m->reason);
    }
    return grpc::Status::OK;
  }

  grpc::Status RepositoryModelLoad(grpc::ServerContext*,
                                   const inference::RepositoryModelLoadRequest* q,
                                   inference::RepositoryModelLoadResponse*) override {
    return guarded("RepositoryModelLoad", [&] {
      repo_.load(q->model_name());
      log_event("info", "model loaded", {{"model", q->model_name()}});
    });
  }

  grpc::Status RepositoryModelUnload(grpc::ServerContext*,
                                     const inference::RepositoryModelUnloadRequest* q,
                                     inference::RepositoryModelUnloadResponse*) override {
    return guarded("RepositoryModelUnload", [&] {
      if (!repo_.find(q->model_name()))
        throw request_error(status_code::not_found, "unknown model '" + q->model_name() + "'");
      repo_.unload(q->model_name());
      log_event("info", "model unloaded", {{"model", q->model_name()}});
    });
  }

 private:
  model_repository& repo_;
};

std::string read_pem(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw value_error("cannot read TLS file '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

struct grpc_frontend::impl {
  std::unique_ptr<service> svc;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool stopped = false;
};

grpc_frontend::grpc_frontend(model_repository& repo, const grpc_options& opts)
    : impl_(std::make_unique<impl>()) {
  impl_->svc = std::make_unique<service>(repo);
  grpc::ServerBuilder b;
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (!opts.tls_cert.empty() || !opts.tls_key.empty()) {
    if (opts.tls_cert.empty() || opts.tls_key.empty())
      throw value_error("gRPC TLS needs both a certificate and a key file");
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({read_pem(opts.tls_key), read_pem(opts.tls_cert)});
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  const auto addr =
      (opts.address.find(':') != std::string::npos ? "[" + opts.address + "]" : opts.address) +
      ":" + std::to_string(opts.port);
  b.AddListeningPort(addr, creds, &impl_->port);
  b.SetMaxReceiveMessageSize(static_cast<int>(opts.max_request_bytes));
  b.RegisterService(impl_->svc.get());
  impl_->server = b.BuildAndStart();
  if (!impl_->server || impl_->port == 0) {
    if (!opts.tls_cert.empty())
      throw error("gRPC: cannot listen on " + addr + " with the TLS certificate '" + opts.tls_cert +
                  "' and key '" + opts.tls_key +
                  "' (the port is in use, not an address of this host, or these are not a "
                  "matching PEM certificate and private key)");
    throw error("gRPC: cannot listen on " + addr + " (in use, or not an address of this host)");
  }
}

grpc_frontend::~grpc_frontend() {
  shutdown();
}

int grpc_frontend::port() const {
  return impl_->port;
}

void grpc_frontend::shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server->Shutdown();  // new calls are refused; calls in progress finish
  impl_->server->Wait();
}

}  // namespace fpyga::serve
