#include "model_config.hpp"

#include "fpyga/error.hpp"
#include "fpyga/network.hpp"

namespace fpyga::serve {

std::size_t tensor_spec::size() const {
  std::size_t n = 1;
  for (auto d : dims) n *= static_cast<std::size_t>(d);
  return n;
}

model_config model_config::from_network(std::string_view name, const network_info& net) {
  model_config c;
  c.name = std::string(name);
  const auto spec = [](const tensor_info& t) {
    tensor_spec s;
    s.name = t.name;
    s.datatype = "FP32";  // clients send floats; the conversion to ap_fixed happens here
    for (auto d : t.shape) s.dims.push_back(static_cast<std::int64_t>(d));
    return s;
  };
  for (const auto& t : net.inputs) c.inputs.push_back(spec(t));
  for (const auto& t : net.outputs) c.outputs.push_back(spec(t));
  return c;
}

}  // namespace fpyga::serve
