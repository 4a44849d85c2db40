#include "http_frontend.hpp"

#include <httplib.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "fpyga/error.hpp"
#include "infer_request.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "model_repository.hpp"

namespace fpyga::serve {

namespace {

using nlohmann::json;
constexpr const char* header_length = "Inference-Header-Content-Length";

int to_http(status_code c) {
  switch (c) {
    case status_code::invalid_argument:
      return 400;
    case status_code::not_found:
      return 404;
    case status_code::unavailable:
      return 503;
    case status_code::resource_exhausted:
      return 503;
    case status_code::deadline_exceeded:
      return 504;
    case status_code::internal:
      return 500;
  }
  return 500;
}

void send_json(httplib::Response& res, const json& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

template <class F>
void guarded(const char* route, httplib::Response& res, F&& body) {
  try {
    body();
  } catch (const request_error& e) {
    log_event("warn", "request failed", {{"route", route}, {"error", e.what()}});
    send_json(res, {{"error", e.what()}}, to_http(e.code()));
  } catch (const json::exception& e) {
    log_event("warn", "request failed", {{"route", route}, {"error", e.what()}});
    send_json(res, {{"error", std::string("malformed request JSON: ") + e.what()}}, 400);
  } catch (const std::exception& e) {
    log_event("error", "request failed", {{"route", route}, {"error", e.what()}});
    send_json(res, {{"error", e.what()}}, 500);
  }
}

request_error bad(const std::string& what) {
  return request_error(status_code::invalid_argument, what);
}

// JSON "data" may be flat or nested row-major; every leaf must be a number.
void flatten(const json& j, std::vector<float>& out, std::size_t limit, const std::string& name) {
  if (j.is_array()) {
    for (const auto& e : j) flatten(e, out, limit, name);
    return;
  }
  if (!j.is_number())
    throw bad("input '" + name + "': data holds " + j.type_name() +
              " where FP32 numbers were expected");
  if (out.size() >= limit) throw bad("input '" + name + "': data holds more values than its shape");
  out.push_back(j.get<float>());
}

std::string model_from(const httplib::Request& req, std::string& version) {
  version = req.matches.size() > 2 ? std::string(req.matches[2]) : "";
  return req.matches[1];
}

json tensor_json(const model_config& c, const tensor_spec& t) {
  return {{"name", t.name}, {"datatype", t.datatype}, {"shape", shown_shape(c, t)}};
}

}  // namespace

struct http_frontend::impl {
  std::unique_ptr<httplib::Server> server;  ///< an httplib::SSLServer with TLS
  std::thread thread;
  int port = 0;
  bool stopped = false;
};

http_frontend::http_frontend(model_repository* repo, metrics* counters, const http_options& o)
    : impl_(std::make_unique<impl>()) {
  if (!o.tls_cert.empty() || !o.tls_key.empty()) {
    if (o.tls_cert.empty() || o.tls_key.empty())
      throw value_error("HTTP TLS needs both a certificate and a key file");
    for (const auto* f : {&o.tls_cert, &o.tls_key})
      if (!std::ifstream(*f)) throw value_error("cannot read TLS file '" + *f + "'");
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    auto ssl = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
    if (!ssl->is_valid())
      throw value_error("HTTP TLS: the certificate '" + o.tls_cert + "' and key '" + o.tls_key +
                        "' are not a matching PEM certificate and private key");
    impl_->server = std::move(ssl);
#else
    throw not_supported_error("HTTP TLS: this build's cpp-httplib has no OpenSSL support");
#endif
  } else {
    impl_->server = std::make_unique<httplib::Server>();
  }
  auto& s = *impl_->server;
  const int threads = o.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.set_payload_max_length(o.max_request_bytes);
  s.set_keep_alive_max_count(100);

  if (counters) {
    s.Get("/metrics", [counters](const httplib::Request&, httplib::Response& res) {
      res.set_content(counters->render(), "text/plain; version=0.0.4");
    });
  }
  if (repo) {
    auto& r = *repo;
    s.Get("/v2/health/live",
          [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
    s.Get("/v2/health/ready", [&r](const httplib::Request&, httplib::Response& res) {
      res.status = r.all_ready() ? 200 : 400;
    });
    s.Get("/v2", [](const httplib::Request&, httplib::Response& res) {
      send_json(
          res, {{"name", "fpyga"},
                {"version", FPYGA_SERVE_VERSION},
                {"extensions",
                 {"model_configuration", "model_repository", "statistics", "binary_tensor_data"}}});
    });
    const std::string model = R"(/v2/models/([^/]+)(?:/versions/([0-9]+))?)";
    // Statistics of every ready model (registered before the model routes, which would take
    // "stats" for a model's name), or of one.
    const auto stats = [&r](const std::string& name, const std::string& version,
                            httplib::Response& res) {
      json list = json::array();
      for (const auto& st : statistics(r, name, version)) {
        const auto d = [](std::uint64_t count, std::uint64_t ns) {
          return json{{"count", count}, {"ns", ns}};
        };
        list.push_back({{"name", st.name},
                        {"version", st.version},
                        {"last_inference", st.last_inference_ms},
                        {"inference_count", st.inference_count},
                        {"execution_count", st.execution_count},
                        {"inference_stats",
                         {{"success", d(st.success_count, st.success_ns)},
                          {"fail", d(st.fail_count, st.fail_ns)},
                          {"queue", d(st.queue_count, st.queue_ns)},
                          {"compute_input", d(0, 0)},
                          {"compute_infer", d(st.compute_count, st.compute_ns)},
                          {"compute_output", d(0, 0)}}},
                        {"batch_stats", json::array()}});
      }
      send_json(res, {{"model_stats", list}});
    };
    s.Get("/v2/models/stats", [stats](const httplib::Request&, httplib::Response& res) {
      guarded("statistics", res, [&] { stats("", "", res); });
    });
    s.Get(model + "/stats", [stats](const httplib::Request& req, httplib::Response& res) {
      guarded("statistics", res, [&] {
        std::string v;
        const std::string name = model_from(req, v);
        stats(name, v, res);
      });
    });
    s.Get(model + "/ready", [&r](const httplib::Request& req, httplib::Response& res) {
      std::string v;
      const auto m = r.find(model_from(req, v), v);
      res.status = m && m->ready() ? 200 : 400;
    });
    s.Get(model + "/config", [&r](const httplib::Request& req, httplib::Response& res) {
      guarded("config", res, [&] {
        std::string v;
        const auto m = resolve(r, model_from(req, v), v);
        const auto& c = m->config;
        json j = {{"name", c.name},
                  {"platform", c.platform},
                  {"backend", "fpyga"},
                  {"max_batch_size", c.max_batch_size}};
        for (const auto& t : c.inputs)
          j["input"].push_back(
              {{"name", t.name}, {"data_type", "TYPE_" + t.datatype}, {"dims", t.dims}});
        for (const auto& t : c.outputs)
          j["output"].push_back(
              {{"name", t.name}, {"data_type", "TYPE_" + t.datatype}, {"dims", t.dims}});
        if (c.dynamic_batching)
          j["dynamic_batching"] = {{"preferred_batch_size", c.preferred_batch_sizes},
                                   {"max_queue_delay_microseconds", c.max_queue_delay_us}};
        j["instance_group"] = {{{"count", m->sched->instances()}, {"kind", "KIND_MODEL"}}};
        send_json(res, j);
      });
    });
    s.Get(model, [&r](const httplib::Request& req, httplib::Response& res) {
      guarded("metadata", res, [&] {
        std::string v;
        const auto m = resolve(r, model_from(req, v), v);
        json versions = json::array();
        for (auto n : r.versions(m->name)) versions.push_back(std::to_string(n));
        json j = {{"name", m->name}, {"versions", versions}, {"platform", m->config.platform}};
        for (const auto& t : m->config.inputs) j["inputs"].push_back(tensor_json(m->config, t));
        for (const auto& t : m->config.outputs) j["outputs"].push_back(tensor_json(m->config, t));
        send_json(res, j);
      });
    });
    s.Post(model + "/infer", [&r](const httplib::Request& req, httplib::Response& res) {
      guarded("infer", res, [&] {
        std::string v;
        const auto m = resolve(r, model_from(req, v), v);
        // The JSON header, then (binary-tensor extension) the tensors' bytes.
        std::size_t json_len = req.body.size();
        if (req.has_header(header_length)) {
          const auto h = req.get_header_value(header_length);
          std::size_t n = 0;
          const bool digits =
              !h.empty() && h.size() < 19 && h.find_first_not_of("0123456789") == std::string::npos;
          if (digits) n = std::stoull(h);
          if (!digits || n > req.body.size())
            throw bad(std::string(header_length) + " '" + h + "' is not a length within the " +
                      std::to_string(req.body.size()) + "-byte body");
          json_len = n;
        }
        const json j =
            json::parse(req.body.begin(), req.body.begin() + static_cast<long>(json_len));
        if (!j.is_object() || !j.contains("inputs") || !j["inputs"].is_array())
          throw bad("the request needs an object with an 'inputs' array");
        std::vector<infer_input> inputs;
        for (const auto& t : j["inputs"]) {
          infer_input in;
          in.name = t.value("name", "");
          in.datatype = t.value("datatype", "");
          if (t.contains("shape")) in.shape = t["shape"].get<std::vector<std::int64_t>>();
          inputs.push_back(std::move(in));
        }
        const std::size_t rows = check_inputs(*m, inputs);
        const auto& sched = *m->sched;
        const std::size_t n_in = rows * sched.n_inputs();
        const auto& t0 = j["inputs"][0];
        const std::string name = inputs[0].name;
        std::vector<float> x;
        const float* xp = nullptr;
        std::size_t binary_at = json_len;
        const auto params = t0.value("parameters", json::object());
        if (params.contains("binary_data_size")) {
          const auto size = params["binary_data_size"].get<std::uint64_t>();
          if (size != n_in * sizeof(float))
            throw bad("input '" + name + "' holds " + std::to_string(size) +
                      " bytes, its shape needs " + std::to_string(n_in * sizeof(float)));
          if (req.body.size() - binary_at < size)
            throw bad("input '" + name + "': the body ends before its " + std::to_string(size) +
                      " bytes");
          const char* at = req.body.data() + binary_at;
          if (reinterpret_cast<std::uintptr_t>(at) % alignof(float) == 0) {
            xp = reinterpret_cast<const float*>(at);  // read in place
          } else {
            x.resize(n_in);
            std::memcpy(x.data(), at, size);
          }
          binary_at += size;
        } else {
          if (!t0.contains("data")) throw bad("input '" + name + "' has no data");
          x.reserve(n_in);
          flatten(t0["data"], x, n_in, name);
          if (x.size() != n_in)
            throw bad("input '" + name + "' has " + std::to_string(x.size()) +
                      " values, its shape needs " + std::to_string(n_in));
        }
        bool binary_out = j.value("parameters", json::object()).value("binary_data_output", false);
        std::vector<std::string> wanted;
        if (j.contains("outputs")) {
          for (const auto& o : j["outputs"]) {
            wanted.push_back(o.value("name", ""));
            binary_out = o.value("parameters", json::object()).value("binary_data", binary_out);
          }
        }
        check_outputs(*m, wanted);

        if (!xp) xp = x.data();
        std::int64_t timeout_us = 0;
        if (const auto p = j.find("parameters"); p != j.end() && p->contains("timeout")) {
          if (!(*p)["timeout"].is_number_integer())
            throw bad("parameter 'timeout' must be an integer (microseconds)");
          timeout_us = (*p)["timeout"].get<std::int64_t>();
        }
        // HTTP/REST has no transport deadline: the "timeout" parameter is the only one.
        const auto deadline = request_deadline(timeout_us, clock::time_point::max());

        const std::size_t n_y = rows * sched.n_outputs();
        json out = {{"name", m->config.outputs.front().name},
                    {"datatype", "FP32"},
                    {"shape", output_shape(*m, rows)}};
        json resp = {{"model_name", m->name}, {"model_version", std::to_string(m->version)}};
        if (j.contains("id")) resp["id"] = j["id"];
        if (binary_out) {
          // The JSON header first, then the outputs computed straight into the body after it.
          out["parameters"] = {{"binary_data_size", n_y * sizeof(float)}};
          resp["outputs"] = json::array({out});
          std::string body = resp.dump();
          const std::size_t head = body.size();
          body.resize(head + n_y * sizeof(float));
          char* at = body.data() + head;
          if (reinterpret_cast<std::uintptr_t>(at) % alignof(float) == 0) {
            m->sched->infer(xp, rows, reinterpret_cast<float*>(at), deadline);
          } else {
            std::vector<float> y(n_y);
            m->sched->infer(xp, rows, y.data(), deadline);
            std::memcpy(at, y.data(), n_y * sizeof(float));
          }
          res.set_header(header_length, std::to_string(head));
          res.set_content(std::move(body), "application/octet-stream");
        } else {
          std::vector<float> y(n_y);
          m->sched->infer(xp, rows, y.data(), deadline);
          out["data"] = y;
          resp["outputs"] = json::array({out});
          send_json(res, resp);
        }
      });
    });
    s.Post("/v2/repository/index", [&r](const httplib::Request& req, httplib::Response& res) {
      guarded("repository index", res, [&] {
        bool ready_only = false;
        if (!req.body.empty()) ready_only = json::parse(req.body).value("ready", false);
        json list = json::array();
        for (const auto& m : r.index()) {
          if (ready_only && !m->ready()) continue;
          json e = {{"name", m->name}, {"state", m->state}, {"reason", m->reason}};
          if (m->xclbin.has_filename()) e["version"] = std::to_string(m->version);
          list.push_back(e);
        }
        send_json(res, list);
      });
    });
    s.Post(R"(/v2/repository/models/([^/]+)/(load|unload))",
           [&r](const httplib::Request& req, httplib::Response& res) {
             guarded("repository", res, [&] {
               const std::string name = req.matches[1];
               if (std::string(req.matches[2]) == "load") {
                 r.load(name);
               } else {
                 if (!r.find(name))
                   throw request_error(status_code::not_found, "unknown model '" + name + "'");
                 r.unload(name);
               }
               res.status = 200;
             });
           });
  }
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty()) {
      const std::string what = res.status == 404
                                   ? "no such endpoint: " + req.method + " " + req.path
                               : res.status == 413 ? "the request is over the size limit"
                                                   : "bad request";
      send_json(res, {{"error", what}}, res.status);
    }
  });

  if (o.port == 0) {
    impl_->port = s.bind_to_any_port(o.address);
  } else if (s.bind_to_port(o.address, o.port)) {
    impl_->port = o.port;
  }
  if (impl_->port <= 0)
    throw error("HTTP: cannot listen on " + o.address + ":" + std::to_string(o.port) +
                " (in use, or not an address of this host)");
  impl_->thread = std::thread([this] { impl_->server->listen_after_bind(); });
}

http_frontend::~http_frontend() {
  shutdown();
}

int http_frontend::port() const {
  return impl_->port;
}

void http_frontend::shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server->stop();  // closes the listening socket; the pool finishes its requests
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace fpyga::serve
