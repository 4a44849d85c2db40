// The errors a request can end with, as the server's core names them; each frontend maps the
// code to its protocol's (gRPC status, HTTP status).
#pragma once

#include <stdexcept>
#include <string>

namespace fpyga::serve {

enum class status_code {
  invalid_argument,    ///< the request is malformed or does not fit the model
  not_found,           ///< unknown model or version
  unavailable,         ///< the model is not ready, or the server is shutting down
  resource_exhausted,  ///< the model's queue is full, or the payload is over the limit
  deadline_exceeded,   ///< the client's deadline passed before the request ran
  internal,            ///< the device failed the batch this request was in
};

class request_error : public std::runtime_error {
 public:
  request_error(status_code code, const std::string& what)
      : std::runtime_error(what), code_(code) {}
  status_code code() const { return code_; }

 private:
  status_code code_;
};

}  // namespace fpyga::serve
