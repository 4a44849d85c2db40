// The "fpyga_network" description: JSON in and out, and its check against the xclbin's kernels.
#include "fpyga/network.hpp"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "fpyga/error.hpp"
#include "fpyga/xclbin.hpp"

namespace fpyga {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& field, const std::string& problem) {
  throw value_error("network description: " + field + ": " + problem);
}

void only_keys(const json& obj, const std::string& where, std::initializer_list<const char*> keys) {
  if (!obj.is_object()) fail(where, "expected an object, got " + std::string(obj.type_name()));
  for (const auto& item : obj.items()) {
    if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return item.key() == k; })) {
      std::string known;
      for (const char* k : keys) known += (known.empty() ? "" : ", ") + std::string(k);
      fail(where.empty() ? item.key() : where + "." + item.key(),
           "unknown field (known: " + known + ")");
    }
  }
}

std::string field(const std::string& where, const char* key) {
  return where.empty() ? key : where + "." + key;
}

std::string required_string(const json& obj, const char* key, const std::string& where) {
  if (!obj.contains(key)) fail(field(where, key), "missing");
  const auto& v = obj[key];
  if (!v.is_string()) fail(field(where, key), "expected a string, got " + v.dump());
  auto s = v.get<std::string>();
  if (s.empty()) fail(field(where, key), "must not be empty");
  return s;
}

std::string optional_string(const json& obj, const char* key, const std::string& where) {
  if (!obj.contains(key)) return {};
  const auto& v = obj[key];
  if (!v.is_string()) fail(field(where, key), "expected a string, got " + v.dump());
  return v.get<std::string>();
}

std::vector<tensor_info> tensors(const json& obj, const char* key) {
  if (!obj.contains(key)) fail(key, "missing");
  const auto& list = obj[key];
  if (!list.is_array() || list.empty())
    fail(key, "expected a non-empty array of {name, shape, type}, got " + list.dump());
  std::vector<tensor_info> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = std::string(key) + "[" + std::to_string(i) + "]";
    only_keys(list[i], where, {"name", "shape", "type"});
    tensor_info t;
    t.name = required_string(list[i], "name", where);
    if (!list[i].contains("shape")) fail(where + ".shape", "missing");
    const auto& shape = list[i]["shape"];
    if (!shape.is_array() || shape.empty())
      fail(where + ".shape",
           "expected a non-empty array of positive integers, got " + shape.dump());
    std::size_t total = 1;
    for (const auto& d : shape) {
      if (!d.is_number_integer() || d.get<std::int64_t>() <= 0)
        fail(where + ".shape", "extents must be positive integers, got " + shape.dump());
      const auto e = d.get<std::uint64_t>();
      if (e > std::numeric_limits<std::uint32_t>::max() ||
          total > std::numeric_limits<std::uint32_t>::max() / e)
        fail(where + ".shape", shape.dump() + " has more than 2^32 values per sample");
      total *= e;
      t.shape.push_back(static_cast<std::size_t>(e));
    }
    const auto type = required_string(list[i], "type", where);
    try {
      t.type = fixed_format::parse(type);
    } catch (const value_error& e) {
      fail(where + ".type", e.what());
    }
    out.push_back(std::move(t));
  }
  return out;
}

nlohmann::ordered_json tensors_json(const std::vector<tensor_info>& ts) {
  auto a = nlohmann::ordered_json::array();
  for (const auto& t : ts)
    a.push_back({{"name", t.name}, {"shape", t.shape}, {"type", t.type.to_string()}});
  return a;
}

// Checks that kernel `name` has `kinds` arguments; for the first two (the data buffers) also
// that their element type agrees with `elements` (nullptr: float32) where the metadata says.
void check_kernel(const xclbin& x, const std::string& role, const std::string& name,
                  std::initializer_list<arg_kind> kinds, const fixed_format* in_type,
                  const fixed_format* out_type, bool float_buffers) {
  const kernel_info* k = x.find_kernel(name);
  if (!k) {
    std::string names;
    for (const auto& kk : x.kernels) names += (names.empty() ? "" : ", ") + kk.name;
    fail("kernels." + role, "kernel '" + name + "' is not in the xclbin (kernels: " +
                                (names.empty() ? "none" : names) + ")");
  }
  const std::string where = "kernels." + role + " ('" + name + "')";
  if (k->args.size() != kinds.size())
    fail(where, "has " + std::to_string(k->args.size()) + " arguments, the interface needs " +
                    std::to_string(kinds.size()));
  std::size_t i = 0;
  for (arg_kind want : kinds) {
    const arg_info& a = k->args[i];
    if (a.kind != want)
      fail(where, "argument " + std::to_string(i) + " '" + a.name + "' is " +
                      std::string(to_string(a.kind)) + ", the interface needs " +
                      std::string(to_string(want)));
    if (i < 2) {
      const c_type ct = c_type::parse(a.type);
      const fixed_format* want_type = i == 0 ? in_type : out_type;
      if (float_buffers) {
        if (ct.cat != c_type::category::opaque && ct.cat != c_type::category::void_type &&
            !(ct.cat == c_type::category::floating && ct.storage_bytes() == 4))
          fail(where, "argument " + std::to_string(i) + " '" + a.name + "' has type '" + a.type +
                          "', the interface passes float32 buffers");
      } else if (want_type) {
        const bool ap = ct.cat == c_type::category::signed_fixed ||
                        ct.cat == c_type::category::unsigned_fixed || ct.arbitrary_precision;
        if (ap) {
          fixed_format got;
          try {
            got = fixed_format::from(ct);
          } catch (const value_error&) {
            got = {};
            got.width = 0;
          }
          if (!(got == *want_type))
            fail(where, "argument " + std::to_string(i) + " '" + a.name + "' has type '" + a.type +
                            "', the network's tensor is " + want_type->to_string());
        } else if ((ct.cat == c_type::category::signed_integer ||
                    ct.cat == c_type::category::unsigned_integer) &&
                   ct.storage_bytes() != want_type->storage_bytes()) {
          fail(where, "argument " + std::to_string(i) + " '" + a.name + "' has type '" + a.type +
                          "' (" + std::to_string(ct.storage_bytes()) + "-byte elements), " +
                          want_type->to_string() + " is stored in " +
                          std::to_string(want_type->storage_bytes()));
        }
      }
    }
    ++i;
  }
}

}  // namespace

std::string_view to_string(network_interface i) {
  return i == network_interface::hls4ml_axi ? "hls4ml_axi" : "fpyga_batch";
}

std::size_t tensor_info::size() const {
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::size_t network_info::n_inputs() const {
  std::size_t n = 0;
  for (const auto& t : inputs) n += t.size();
  return n;
}

std::size_t network_info::n_outputs() const {
  std::size_t n = 0;
  for (const auto& t : outputs) n += t.size();
  return n;
}

const std::string& network_info::run_kernel() const {
  return interface == network_interface::hls4ml_axi ? axi_kernel : batch_kernel;
}

network_info network_info::from_json(std::string_view text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw value_error(std::string("network description is not valid JSON: ") + e.what());
  }
  only_keys(j, "",
            {"schema", "name", "producer", "producer_version", "io_type", "interface", "kernels",
             "inputs", "outputs"});
  const auto s = required_string(j, "schema", "");
  if (s != schema)
    fail("schema", "'" + s + "' is not '" + std::string(schema) + "' (written by a newer fpyga?)");
  network_info n;
  n.name = required_string(j, "name", "");
  n.producer = optional_string(j, "producer", "");
  n.producer_version = optional_string(j, "producer_version", "");
  n.io_type = required_string(j, "io_type", "");
  if (n.io_type != "io_parallel" && n.io_type != "io_stream")
    fail("io_type", "'" + n.io_type + "' is not io_parallel or io_stream");
  const auto iface = required_string(j, "interface", "");
  if (iface == "fpyga_batch")
    n.interface = network_interface::fpyga_batch;
  else if (iface == "hls4ml_axi")
    n.interface = network_interface::hls4ml_axi;
  else
    fail("interface", "'" + iface + "' is not fpyga_batch or hls4ml_axi");
  if (!j.contains("kernels")) fail("kernels", "missing");
  const auto& k = j["kernels"];
  if (n.interface == network_interface::fpyga_batch) {
    only_keys(k, "kernels", {"single", "batch", "batch_csim"});
    n.batch_kernel = required_string(k, "batch", "kernels");
    n.batch_csim_kernel = optional_string(k, "batch_csim", "kernels");
    n.single_kernel = optional_string(k, "single", "kernels");
  } else {
    only_keys(k, "kernels", {"axi"});
    n.axi_kernel = required_string(k, "axi", "kernels");
  }
  n.inputs = tensors(j, "inputs");
  n.outputs = tensors(j, "outputs");
  return n;
}

void network_info::check_kernels(const xclbin& x) const {
  const fixed_format* in_type = inputs.size() == 1 ? &inputs[0].type : nullptr;
  const fixed_format* out_type = outputs.size() == 1 ? &outputs[0].type : nullptr;
  if (interface == network_interface::fpyga_batch) {
    check_kernel(x, "batch", batch_kernel, {arg_kind::global, arg_kind::global, arg_kind::scalar},
                 in_type, out_type, false);
    if (!batch_csim_kernel.empty())
      check_kernel(x, "batch_csim", batch_csim_kernel,
                   {arg_kind::global, arg_kind::global, arg_kind::scalar}, in_type, out_type,
                   false);
    if (!single_kernel.empty())
      check_kernel(x, "single", single_kernel, {arg_kind::global, arg_kind::global}, in_type,
                   out_type, false);
  } else {
    check_kernel(x, "axi", axi_kernel,
                 {arg_kind::global, arg_kind::global, arg_kind::scalar, arg_kind::scalar}, nullptr,
                 nullptr, true);
  }
}

std::optional<network_info> network_info::of(const xclbin& x) {
  const raw_section* found = nullptr;
  for (const auto& s : x.other_sections)
    if (s.kind == section_kind::user_metadata && s.name == section_name) {
      if (found)
        throw xclbin_error("xclbin '" + x.source + "': two USER_METADATA sections named '" +
                           std::string(section_name) + "'");
      found = &s;
    }
  if (!found) {
    // A card build adds the description with Vitis's xclbinutil, which may name the section
    // otherwise: a USER_METADATA payload carrying the schema string is taken then.
    const std::string_view mark = "\"fpyga.network/";
    for (const auto& s : x.other_sections) {
      if (s.kind != section_kind::user_metadata) continue;
      const std::string_view text(reinterpret_cast<const char*>(s.payload.data()),
                                  s.payload.size());
      if (text.find(mark) == std::string_view::npos) continue;
      if (found)
        throw xclbin_error("xclbin '" + x.source + "': two USER_METADATA sections carry an " +
                           "fpyga network description ('" + found->name + "', '" + s.name + "')");
      found = &s;
    }
  }
  if (!found) return std::nullopt;
  const std::string_view text(reinterpret_cast<const char*>(found->payload.data()),
                              found->payload.size());
  try {
    auto n = from_json(text);
    n.check_kernels(x);
    return n;
  } catch (const value_error& e) {
    throw xclbin_error("xclbin '" + x.source + "': USER_METADATA '" + std::string(section_name) +
                       "': " + e.what());
  }
}

std::string network_info::to_json(int indent) const {
  nlohmann::ordered_json j;
  j["schema"] = std::string(schema);
  j["name"] = name;
  j["producer"] = producer;
  j["producer_version"] = producer_version;
  j["io_type"] = io_type;
  j["interface"] = std::string(fpyga::to_string(interface));
  if (interface == network_interface::fpyga_batch) {
    j["kernels"] = nlohmann::ordered_json::object();
    if (!single_kernel.empty()) j["kernels"]["single"] = single_kernel;
    j["kernels"]["batch"] = batch_kernel;
    if (!batch_csim_kernel.empty()) j["kernels"]["batch_csim"] = batch_csim_kernel;
  } else {
    j["kernels"] = {{"axi", axi_kernel}};
  }
  j["inputs"] = tensors_json(inputs);
  j["outputs"] = tensors_json(outputs);
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace fpyga
