// The KServe v2 gRPC frontend: translates GRPCInferenceService calls into the repository's and
// the schedulers' calls and back. It holds no queue or policy of its own.
#pragma once

#include <memory>
#include <string>

namespace fpyga::serve {

class model_repository;
struct infer_limits;

struct grpc_options {
  std::string address = "127.0.0.1";
  int port = 8001;  ///< 0: any free port
  /// Largest request message accepted (bytes); larger ones are refused before they are parsed.
  std::size_t max_request_bytes = 64u << 20;
  /// TLS from PEM files when both are given.
  std::string tls_cert, tls_key;
};

class grpc_frontend {
 public:
  /// Starts serving at once. @throws error when the address cannot be bound.
  grpc_frontend(model_repository& repo, const grpc_options& opts);
  ~grpc_frontend();
  /// The port bound (the chosen one for port 0).
  int port() const;
  /// Stops accepting calls and waits for the calls in progress to finish.
  void shutdown();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fpyga::serve
