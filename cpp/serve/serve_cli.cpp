#include "serve_cli.hpp"

#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>

#include "fpyga/device.hpp"
#include "fpyga/error.hpp"
#include "grpc_frontend.hpp"
#include "http_frontend.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "model_repository.hpp"

namespace fpyga::serve {

CLI::App* add_command(CLI::App& app, cli_options& o) {
  auto* s = app.add_subcommand(
      "serve", "Serve a model repository over the KServe v2 / Triton protocol (docs/serve.md)");
  s->add_option("--model-repository", o.model_repository,
                "DIR/<model>/<version>/model.xclbin [+ DIR/<model>/config.pbtxt]")
      ->required();
  s->add_option("--grpc-port", o.grpc_port, "gRPC port (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  s->add_option("--http-port", o.http_port, "HTTP/REST v2 port (0: any free port, -1: none)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  s->add_option("--metrics-port", o.metrics_port,
                "Prometheus /metrics port (0: any free port, -1: none)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  s->add_option("--address", o.address, "Address to bind (127.0.0.1: this host only)")
      ->capture_default_str();
  s->add_option("--device", o.devices,
                "Devices to serve on (emu, emu:N, xrt:N, opencl:N); default: the default device")
      ->expected(1, -1);
  s->add_option("--max-queue-size", o.max_queue_size,
                "Requests waiting per model at most (0: the model's own limit, 4096)");
  s->add_option("--max-request-bytes", o.max_request_bytes, "Largest request accepted")
      ->capture_default_str();
  s->add_option("--tls-cert", o.tls_cert,
                "PEM certificate: serve gRPC, HTTP/REST and /metrics over TLS");
  s->add_option("--tls-key", o.tls_key, "PEM private key for --tls-cert");
  return s;
}

int run_command(const cli_options& o) {
  // SIGTERM and SIGINT are taken by sigwait below: blocked before any thread starts, so every
  // thread inherits the mask and none is interrupted by them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  std::vector<device> devs;
  if (o.devices.empty()) devs.push_back(device::open());
  for (const auto& spec : o.devices) devs.push_back(device::open(spec));
  for (std::size_t i = 0; i < devs.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (devs[i].spec() == devs[j].spec())
        throw value_error("--device " + devs[i].spec() + " is given twice");

  metrics counters;
  scheduler_options so;
  so.max_queue_size = o.max_queue_size;
  so.counters = &counters;
  model_repository repo(o.model_repository, devs, so);
  for (const auto& m : repo.index())
    log_event(m->ready() ? "info" : "warn", m->ready() ? "model ready" : "model not loaded",
              {{"model", m->name},
               {"version", std::to_string(m->version)},
               {"state", m->state},
               {"reason", m->reason}});

  grpc_options go;
  go.address = o.address;
  go.port = o.grpc_port;
  go.max_request_bytes = o.max_request_bytes;
  go.tls_cert = o.tls_cert;
  go.tls_key = o.tls_key;
  grpc_frontend grpc(repo, go);
  std::optional<http_frontend> http, prometheus;
  http_options ho;
  ho.address = o.address;
  ho.max_request_bytes = o.max_request_bytes;
  ho.tls_cert = o.tls_cert;  // every endpoint speaks TLS when asked: HTTP/REST and /metrics
  ho.tls_key = o.tls_key;
  if (o.http_port >= 0) {
    ho.port = o.http_port;
    http.emplace(&repo, nullptr, ho);
  }
  if (o.metrics_port >= 0) {
    ho.port = o.metrics_port;
    prometheus.emplace(nullptr, &counters, ho);
  }
  std::string dev_list;
  for (const auto& d : devs) dev_list += (dev_list.empty() ? "" : ",") + d.spec();
  const auto where = [&](int port) { return o.address + ":" + std::to_string(port); };
  log_event("info", "listening",
            {{"grpc", where(grpc.port())},
             {"http", http ? where(http->port()) : ""},
             {"metrics", prometheus ? where(prometheus->port()) : ""},
             {"devices", dev_list}});

  int sig = 0;
  while (sigwait(&stop, &sig) != 0) {
  }
  log_event("info", "draining", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  // Both frontends stop accepting at once; the calls in progress (and their queued requests)
  // finish.
  std::thread http_stop([&] {
    if (http) http->shutdown();
  });
  grpc.shutdown();
  http_stop.join();
  repo.drain();
  if (prometheus) prometheus->shutdown();
  log_event("info", "stopped");
  return 0;
}

}  // namespace fpyga::serve
