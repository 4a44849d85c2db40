// A Triton-style model repository: DIR/<model>/<version>/model.xclbin plus an optional
// DIR/<model>/config.pbtxt. The latest version of each model is loaded (Triton's default
// version policy); each loaded model gets devices of its own, because a device holds one xclbin
// at a time. A model that fails to load stays in the index as UNAVAILABLE with the reason, and
// the others serve.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fpyga/device.hpp"
#include "model_config.hpp"
#include "scheduler.hpp"

namespace fpyga::serve {

/// One version of one model. Ready models have a scheduler; the others a reason.
struct model_version {
  std::string name;
  std::int64_t version = 0;
  std::filesystem::path xclbin;
  model_config config;
  std::string state;   ///< "READY" or "UNAVAILABLE"
  std::string reason;  ///< why it is not ready ("" when ready)
  std::shared_ptr<scheduler> sched;

  bool ready() const { return state == "READY"; }
};

class model_repository {
 public:
  /// Scans `root` and loads the models on `devices` (shared out between the models).
  /// @throws value_error when root is not a directory or `devices` is empty.
  model_repository(std::filesystem::path root, std::vector<device> devices,
                   scheduler_options opts = {});
  ~model_repository();

  /// The model version to serve: `version` "" means the latest. nullptr when there is none.
  std::shared_ptr<const model_version> find(const std::string& name,
                                            const std::string& version = "") const;
  /// Every version of every model found, loaded or not, by name then version.
  std::vector<std::shared_ptr<const model_version>> index() const;
  /// All versions of a model (empty when unknown).
  std::vector<std::int64_t> versions(const std::string& name) const;
  /// Whether every model found loaded (the server is "ready").
  bool all_ready() const;

  /// Loads (again) a model named in the repository; its devices are those it had, or free ones.
  /// @throws request_error (not_found / unavailable) naming the model and the reason.
  void load(const std::string& name);
  /// Unloads a model: its queued requests still finish; new ones see it as not ready.
  void unload(const std::string& name);

  /// Stops every scheduler from taking new requests and waits for the accepted ones.
  void drain();

  const std::filesystem::path& root() const { return root_; }

 private:
  void load_locked(const std::string& name);

  std::filesystem::path root_;
  std::vector<device> devices_;
  scheduler_options opts_;
  mutable std::mutex mu_;
  /// name -> version -> entry; entries are replaced, never changed, so readers may keep them.
  std::map<std::string, std::map<std::int64_t, std::shared_ptr<const model_version>>> models_;
  /// name -> indices into devices_ it holds
  std::map<std::string, std::vector<std::size_t>> owned_;
};

}  // namespace fpyga::serve
