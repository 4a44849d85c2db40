// `fpyga serve`: the subcommand the fpyga CLI (cpp/tools/fpyga.cpp) adds when the build has
// the server (FPYGA_WITH_SERVE).
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace fpyga::serve {

struct cli_options {
  std::string model_repository;
  std::string address = "127.0.0.1";
  int grpc_port = 8001;
  int http_port = 8000;
  int metrics_port = 8002;
  std::vector<std::string> devices;
  std::size_t max_queue_size = 0;
  std::size_t max_request_bytes = 64u << 20;
  std::string tls_cert, tls_key;
};

/// Adds `serve` to `app`, its options bound to `opts`.
CLI::App* add_command(CLI::App& app, cli_options& opts);
/// Runs the server until SIGTERM or SIGINT, then drains: stops accepting, finishes every
/// accepted request and returns 0.
int run_command(const cli_options& opts);

}  // namespace fpyga::serve
