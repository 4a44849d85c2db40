// fpyga._core.nn_model (a network in an xclbin, fed from NumPy arrays), xclbin_pack (an xclbin
// from a JSON description and a bitstream, as `fpyga xclbin pack` does) and xclbin.network.
// predict releases the GIL for the whole batch and takes it back only between chunks, to call
// the progress callback and to let Ctrl-C interrupt a long batch.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "fpyga/network.hpp"
#include "fpyga/nn_model.hpp"

namespace fpyga::python {

namespace {

// A _core.device, a fpyga.Device (its `_core`), or a spec string such as "emu:1".
device to_device(py::handle h) {
  if (py::isinstance<py::str>(h)) return device::open(h.cast<std::string>());
  if (py::isinstance<device>(h)) return h.cast<device>();
  if (py::hasattr(h, "_core")) {
    py::object core = h.attr("_core");
    if (py::isinstance<device>(core)) return core.cast<device>();
  }
  throw py::type_error(
      "nn_model: a device must be a fpyga.Device, a _core.device or a spec "
      "string such as 'emu:0', not " +
      std::string(py::str(py::type::of(h).attr("__name__"))));
}

// The progress hook run between chunks: re-takes the GIL, lets Python signals (Ctrl-C) through
// and calls the user's callback, if any.
nn_model::progress_fn python_progress(py::object callback) {
  return [callback](std::size_t done) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (!callback.is_none()) callback(done);
  };
}

// The sample count of x for a network of `per_sample` values: x is (n, ...) with the trailing
// extents multiplying to per_sample.
std::size_t samples_of(const py::array& x, std::size_t per_sample, const char* what,
                       const std::string& network) {
  std::size_t trailing = 1;
  for (py::ssize_t d = 1; d < x.ndim(); ++d) trailing *= static_cast<std::size_t>(x.shape(d));
  if (x.ndim() < 2 || trailing != per_sample) {
    std::string shape = "(";
    for (py::ssize_t d = 0; d < x.ndim(); ++d) {
      if (d) shape += ", ";
      shape += std::to_string(x.shape(d));
    }
    shape += x.ndim() == 1 ? ",)" : ")";
    std::string msg = what;
    msg += " of network '";
    msg += network;
    msg += "' must have shape (n, " + std::to_string(per_sample) + ") (or (n, ...) of ";
    msg += std::to_string(per_sample) + " values per sample), got " + shape;
    throw value_error(msg);
  }
  return static_cast<std::size_t>(x.shape(0));
}

py::dtype raw_dtype(std::size_t bytes, bool is_signed, bool floating) {
  if (floating) return py::dtype::of<float>();
  switch (bytes) {
    case 1:
      return is_signed ? py::dtype::of<std::int8_t>() : py::dtype::of<std::uint8_t>();
    case 2:
      return is_signed ? py::dtype::of<std::int16_t>() : py::dtype::of<std::uint16_t>();
    case 4:
      return is_signed ? py::dtype::of<std::int32_t>() : py::dtype::of<std::uint32_t>();
    default:
      return is_signed ? py::dtype::of<std::int64_t>() : py::dtype::of<std::uint64_t>();
  }
}

template <class X, class Y>
py::array_t<Y> predict_as(const nn_model& m, const py::array& x, py::object progress) {
  const std::size_t n = samples_of(x, m.n_inputs(), "input", m.info().name);
  py::array_t<Y> y({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(m.n_outputs())});
  const X* xp = static_cast<const X*>(x.data());
  Y* yp = y.mutable_data();
  auto hook = python_progress(std::move(progress));
  {
    py::gil_scoped_release release;
    m.predict(xp, n, yp, hook);
  }
  return y;
}

}  // namespace

void bind_nn(py::module_& m) {
  py::class_<nn_model>(m, "nn_model",
                       "A network in an xclbin (one carrying a network description), loaded on "
                       "one or more devices; the batch is split over every compute unit.")
      .def(py::init([](const std::string& path, py::object devices, const std::string& exact) {
             std::vector<device> devs;
             if (!devices.is_none()) {
               if (py::isinstance<py::str>(devices) || !py::isinstance<py::iterable>(devices))
                 devs.push_back(to_device(devices));
               else
                 for (py::handle h : devices) devs.push_back(to_device(h));
             }
             py::gil_scoped_release release;
             return nn_model(path, std::move(devs), exact);
           }),
           py::arg("path"), py::arg("devices") = py::none(), py::arg("exact") = "",
           "Loads the xclbin on each device (None or []: the default device). Raises ValueError "
           "when the xclbin has no network description.")
      .def_property_readonly(
          "info",
          [](const nn_model& self) {
            return py::module_::import("json").attr("loads")(self.info().to_json());
          },
          "The network description (schema fpyga.network/1) as a dict.")
      .def_property_readonly("info_json",
                             [](const nn_model& self) { return self.info().to_json(); })
      .def_property_readonly("n_inputs", &nn_model::n_inputs)
      .def_property_readonly("n_outputs", &nn_model::n_outputs)
      .def_property_readonly("compute_units", &nn_model::compute_units)
      .def_property_readonly("devices", &nn_model::devices)
      .def_property_readonly("path", &nn_model::path)
      .def_property_readonly(
          "raw_input_dtype",
          [](const nn_model& self) {
            const auto& t = self.info().inputs.front().type;
            return raw_dtype(self.raw_input_bytes(), t.is_signed,
                             self.info().interface == network_interface::hls4ml_axi);
          },
          "The NumPy dtype predict_raw takes.")
      .def_property_readonly("raw_output_dtype",
                             [](const nn_model& self) {
                               const auto& t = self.info().outputs.front().type;
                               return raw_dtype(
                                   self.raw_output_bytes(), t.is_signed,
                                   self.info().interface == network_interface::hls4ml_axi);
                             })
      .def_property("chunk_samples", &nn_model::chunk_samples, &nn_model::set_chunk_samples,
                    "Samples per chunk (0: chosen from the batch and the compute units).")
      .def(
          "predict",
          [](const nn_model& self, py::array x, py::object progress, py::object dtype) {
            const bool f64_out =
                !dtype.is_none() && py::dtype::from_args(dtype).equal(py::dtype::of<double>());
            if (!dtype.is_none() && !f64_out &&
                !py::dtype::from_args(dtype).equal(py::dtype::of<float>()))
              throw value_error("predict: dtype must be float32 or float64");
            const bool c_order = x.flags() & py::array::c_style;
            if (py::isinstance<py::array_t<float>>(x) && c_order)
              return f64_out ? py::array(predict_as<float, double>(self, x, progress))
                             : py::array(predict_as<float, float>(self, x, progress));
            if (py::isinstance<py::array_t<double>>(x) && c_order)
              return f64_out ? py::array(predict_as<double, double>(self, x, progress))
                             : py::array(predict_as<double, float>(self, x, progress));
            throw value_error(
                "predict: input must be a C-contiguous float32 or float64 array, got " +
                py::str(static_cast<py::handle>(x.dtype())).cast<std::string>() +
                (c_order ? "" : " (not C-contiguous)"));
          },
          py::arg("x"), py::arg("progress") = py::none(), py::arg("dtype") = py::none(),
          "Runs the samples of x (shape (n, n_inputs), float32 or float64, C-contiguous); "
          "returns float32 (or `dtype`) of shape (n, n_outputs). progress(samples_done) is "
          "called between chunks. The GIL is released while the batch runs.")
      .def(
          "predict_raw",
          [](const nn_model& self, py::array x, py::object progress) {
            const auto& info = self.info();
            const bool axi = info.interface == network_interface::hls4ml_axi;
            const py::dtype want =
                raw_dtype(self.raw_input_bytes(), info.inputs.front().type.is_signed, axi);
            const bool ok_kind =
                axi ? x.dtype().equal(want)
                    : (x.dtype().kind() == 'i' || x.dtype().kind() == 'u') &&
                          static_cast<std::size_t>(x.itemsize()) == self.raw_input_bytes();
            if (!ok_kind || !(x.flags() & py::array::c_style))
              throw value_error("predict_raw: input must be a C-contiguous " +
                                py::str(static_cast<py::handle>(want)).cast<std::string>() +
                                " array (the kernel's containers), "
                                "got " +
                                py::str(static_cast<py::handle>(x.dtype())).cast<std::string>());
            const std::size_t n = samples_of(x, self.n_inputs(), "raw input", info.name);
            const py::dtype out_dtype =
                raw_dtype(self.raw_output_bytes(), info.outputs.front().type.is_signed, axi);
            py::array y(out_dtype,
                        std::vector<py::ssize_t>{static_cast<py::ssize_t>(n),
                                                 static_cast<py::ssize_t>(self.n_outputs())});
            const void* xp = x.data();
            void* yp = y.mutable_data();
            auto hook = python_progress(std::move(progress));
            {
              py::gil_scoped_release release;
              self.predict_raw(xp, n, yp, hook);
            }
            return y;
          },
          py::arg("x"), py::arg("progress") = py::none(),
          "Like predict, on the kernel's own containers (raw ap_fixed bits, raw_input_dtype).")
      .def("__repr__", [](const nn_model& self) {
        return "<fpyga nn_model '" + self.info().name + "' from " + self.path() + ", " +
               std::to_string(self.compute_units()) + " compute unit(s)>";
      });

  m.def(
      "xclbin_pack",
      [](const std::string& description, py::bytes bitstream, const std::string& path) {
        const std::string_view bits = bitstream;
        std::vector<std::byte> b(reinterpret_cast<const std::byte*>(bits.data()),
                                 reinterpret_cast<const std::byte*>(bits.data()) + bits.size());
        py::gil_scoped_release release;
        const xclbin x = xclbin::from_description(description, std::move(b));
        // Through a temporary name, so a failure never leaves a half-written xclbin behind.
        const std::string tmp = path + ".tmp";
        x.write(tmp);
        if (std::rename(tmp.c_str(), path.c_str()) != 0) {
          std::remove(tmp.c_str());
          throw error("cannot move the packed xclbin to '" + path + "'");
        }
        return x.uuid_string();
      },
      py::arg("description"), py::arg("bitstream"), py::arg("path"),
      "Packs an xclbin from the JSON description `fpyga xclbin pack` takes (docs/xclbin.md) "
      "and a BITSTREAM payload (an ELF .so makes an sw_emu xclbin); returns its uuid. Raises "
      "ValueError naming the field of a malformed description.");

  // xclbin.network: added here so the network code stays in one binding file.
  auto xclbin_class = py::reinterpret_borrow<py::class_<xclbin>>(m.attr("xclbin"));
  xclbin_class.def_property_readonly(
      "network",
      [](const xclbin& x) -> std::optional<std::string> {
        if (auto n = network_info::of(x)) return n->to_json(2);
        return std::nullopt;
      },
      "The network description (JSON text, schema fpyga.network/1), or None.");
}

}  // namespace fpyga::python
