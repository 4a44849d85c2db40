// The KServe v2 HTTP/REST frontend (cpp-httplib): JSON tensors and Triton's binary-tensor
// extension, health, metadata, configuration, repository index and load/unload; and the
// Prometheus endpoint. Like the gRPC frontend it only translates: requests go to the same
// schedulers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace fpyga::serve {

class model_repository;
class metrics;

struct http_options {
  std::string address = "127.0.0.1";
  int port = 8000;  ///< 0: any free port
  std::size_t max_request_bytes = 64u << 20;
  int threads = 32;  ///< connections served at once
  /// HTTPS from PEM files when both are given.
  std::string tls_cert, tls_key;
};

class http_frontend {
 public:
  /// Serves the v2 API (`repo` not null) and/or GET /metrics (`counters` not null) on one port.
  /// @throws error when the address cannot be bound; value_error for unreadable or mismatched
  ///         TLS files.
  http_frontend(model_repository* repo, metrics* counters, const http_options& opts);
  ~http_frontend();
  int port() const;
  /// Stops accepting connections and finishes the requests in progress.
  void shutdown();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fpyga::serve
