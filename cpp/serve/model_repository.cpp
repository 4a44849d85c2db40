#include "model_repository.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "fpyga/error.hpp"
#include "fpyga/network.hpp"
#include "fpyga/nn_model.hpp"

namespace fpyga::serve {

namespace fs = std::filesystem;

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The version directories of a model directory, ascending.
std::vector<std::int64_t> version_dirs(const fs::path& dir) {
  std::vector<std::int64_t> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto n = e.path().filename().string();
    if (e.is_directory() && all_digits(n)) v.push_back(std::stoll(n));
  }
  std::sort(v.begin(), v.end());
  return v;
}

std::string read_text(const fs::path& p, std::size_t limit) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw value_error("cannot open '" + p.string() + "'");
  std::string s;
  s.resize(limit + 1);
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<std::size_t>(in.gcount()));
  if (s.size() > limit)
    throw value_error("'" + p.string() + "' is over " + std::to_string(limit) + " bytes");
  return s;
}

std::shared_ptr<model_version> unavailable(const std::string& name, std::int64_t version,
                                           const fs::path& xclbin, std::string reason) {
  auto m = std::make_shared<model_version>();
  m->name = name;
  m->version = version;
  m->xclbin = xclbin;
  m->state = "UNAVAILABLE";
  m->reason = std::move(reason);
  return m;
}

}  // namespace

model_repository::model_repository(fs::path root, std::vector<device> devices,
                                   scheduler_options opts)
    : root_(std::move(root)), devices_(std::move(devices)), opts_(opts) {
  if (!fs::is_directory(root_))
    throw value_error("model repository '" + root_.string() + "' is not a directory");
  if (devices_.empty()) throw value_error("model repository: no device to serve on");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root_)) {
    const auto n = e.path().filename().string();
    if (e.is_directory() && !n.empty() && n[0] != '.') names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  // Devices are shared out round-robin; with more models than devices the last ones wait for
  // a device (a device holds one xclbin at a time).
  std::vector<std::string> loadable;
  for (const auto& n : names) {
    if (version_dirs(root_ / n).empty())
      models_[n][0] = unavailable(n, 0, {},
                                  "no version directory with a model.xclbin (expected " +
                                      (root_ / n / "1" / "model.xclbin").string() + ")");
    else
      loadable.push_back(n);
  }
  for (std::size_t d = 0; d < devices_.size() && !loadable.empty(); ++d) {
    owned_[loadable[d % loadable.size()]].push_back(d);
  }
  std::lock_guard lk(mu_);
  for (const auto& n : loadable) load_locked(n);
}

model_repository::~model_repository() {
  drain();
}

void model_repository::load_locked(const std::string& name) {
  const auto dir = root_ / name;
  const auto versions = version_dirs(dir);
  auto& entries = models_[name];
  entries.clear();
  if (versions.empty()) {
    entries[0] = unavailable(name, 0, {}, "no version directory with a model.xclbin");
    return;
  }
  const auto latest = versions.back();
  for (auto v : versions)
    if (v != latest)
      entries[v] = unavailable(
          name, v, dir / std::to_string(v) / "model.xclbin",
          "not loaded: only the latest version (" + std::to_string(latest) + ") is served");
  const auto xclbin = dir / std::to_string(latest) / "model.xclbin";
  auto& mine = owned_[name];
  if (mine.empty()) {
    std::set<std::size_t> taken;
    for (const auto& [n, idx] : owned_) taken.insert(idx.begin(), idx.end());
    for (std::size_t d = 0; d < devices_.size(); ++d)
      if (!taken.count(d)) {
        mine.push_back(d);
        break;
      }
  }
  if (mine.empty()) {
    entries[latest] = unavailable(
        name, latest, xclbin,
        "no free device: each device holds one model; give the server more devices (--device)");
    return;
  }
  try {
    if (!fs::is_regular_file(xclbin)) throw value_error("'" + xclbin.string() + "' does not exist");
    // The first instance tells the network; the config is checked before the other devices load.
    std::vector<nn_model> instances;
    instances.emplace_back(xclbin.string(), std::vector<device>{devices_[mine.front()]});
    const auto& net = instances.front().info();
    if (net.inputs.size() != 1 || net.outputs.size() != 1)
      throw value_error("the network has " + std::to_string(net.inputs.size()) + " inputs and " +
                        std::to_string(net.outputs.size()) +
                        " outputs; fpyga serve serves networks with one of each");
    auto cfg = model_config::from_network(name, net);
    const auto pbtxt = dir / "config.pbtxt";
    if (fs::exists(pbtxt)) cfg.apply_pbtxt(read_text(pbtxt, 1 << 20), pbtxt.string(), net);
    std::size_t n_dev = mine.size();
    if (cfg.instance_count > 0) n_dev = std::min(n_dev, cfg.instance_count);
    for (std::size_t i = 1; i < n_dev; ++i)
      instances.emplace_back(xclbin.string(), std::vector<device>{devices_[mine[i]]});
    auto m = std::make_shared<model_version>();
    m->name = name;
    m->version = latest;
    m->xclbin = xclbin;
    m->config = cfg;
    m->state = "READY";
    m->sched = std::make_shared<scheduler>(std::move(cfg), std::move(instances),
                                           std::to_string(latest), opts_);
    entries[latest] = std::move(m);
  } catch (const std::exception& e) {
    entries[latest] = unavailable(name, latest, xclbin, e.what());
    owned_.erase(name);  // its devices may serve another model
  }
}

std::shared_ptr<const model_version> model_repository::find(const std::string& name,
                                                            const std::string& version) const {
  std::lock_guard lk(mu_);
  const auto it = models_.find(name);
  if (it == models_.end() || it->second.empty()) return nullptr;
  if (version.empty()) return it->second.rbegin()->second;
  if (!all_digits(version)) return nullptr;
  const auto v = it->second.find(std::stoll(version));
  return v == it->second.end() ? nullptr : v->second;
}

std::vector<std::shared_ptr<const model_version>> model_repository::index() const {
  std::lock_guard lk(mu_);
  std::vector<std::shared_ptr<const model_version>> all;
  for (const auto& [n, versions] : models_)
    for (const auto& [v, m] : versions) all.push_back(m);
  return all;
}

std::vector<std::int64_t> model_repository::versions(const std::string& name) const {
  std::lock_guard lk(mu_);
  std::vector<std::int64_t> v;
  const auto it = models_.find(name);
  if (it != models_.end())
    for (const auto& [n, m] : it->second)
      if (m->xclbin.has_filename()) v.push_back(n);
  return v;
}

bool model_repository::all_ready() const {
  std::lock_guard lk(mu_);
  for (const auto& [n, versions] : models_)
    if (versions.empty() || !versions.rbegin()->second->ready()) return false;
  return true;
}

void model_repository::load(const std::string& name) {
  if (name.empty() || name[0] == '.' || name.find('/') != std::string::npos ||
      !fs::is_directory(root_ / name))
    throw request_error(status_code::not_found,
                        "model '" + name + "' is not in the repository '" + root_.string() + "'");
  unload(name);  // the devices are reused: the old instances finish first
  std::lock_guard lk(mu_);
  load_locked(name);
  const auto& latest = models_[name].rbegin()->second;
  if (!latest->ready())
    throw request_error(status_code::unavailable,
                        "model '" + name + "' failed to load: " + latest->reason);
}

void model_repository::unload(const std::string& name) {
  std::vector<std::shared_ptr<scheduler>> old;
  {
    std::lock_guard lk(mu_);
    const auto it = models_.find(name);
    if (it == models_.end()) return;
    for (auto& [v, m] : it->second) {
      if (m->sched) old.push_back(m->sched);
      if (m->ready()) m = unavailable(name, v, m->xclbin, "unloaded");
    }
  }
  // Accepted requests finish on the devices before anyone reloads them; then they are free.
  for (auto& s : old) s->drain();
  std::lock_guard lk(mu_);
  owned_.erase(name);
}

void model_repository::drain() {
  std::vector<std::shared_ptr<scheduler>> all;
  {
    std::lock_guard lk(mu_);
    for (const auto& [n, versions] : models_)
      for (const auto& [v, m] : versions)
        if (m->sched) all.push_back(m->sched);
  }
  for (auto& s : all) s->close();
  for (auto& s : all) s->drain();
}

}  // namespace fpyga::serve
