// fpyga::buffer, its host memory as a Python buffer (NumPy arrays over it are zero-copy), and
// the methods of fpyga.PynqBuffer that must be fast: syncs and addresses of any view of a
// buffer, resolved in C++ from the array's `.base` chain.
#include <pybind11/stl.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "bindings.hpp"

namespace fpyga::python {

PyTypeObject* buffer_type = nullptr;

namespace {

fpyga::buffer* buffer_of(PyObject* obj) {
  auto* inst = reinterpret_cast<py::detail::instance*>(obj);
  return static_cast<fpyga::buffer*>(inst->get_value_and_holder().value_ptr());
}

// Copies under this size are faster than the GIL round trip they would need.
constexpr std::size_t release_gil_above = 64 * 1024;

void sync(const buffer_span& s, bool to_device) {
  if (s.bytes == 0) return;
  auto do_sync = [&] {
    if (to_device)
      s.buffer->sync_to_device(s.bytes, s.offset);
    else
      s.buffer->sync_from_device(s.bytes, s.offset);
  };
  if (s.bytes >= release_gil_above) {
    py::gil_scoped_release release;
    do_sync();
  } else {
    do_sync();
  }
}

// "PynqBuffer of shape (1024,) and dtype uint32": names the array in messages (error path only).
std::string describe(PyObject* obj) {
  std::string out = Py_TYPE(obj)->tp_name;
  if (!py::detail::npy_api::get().PyArray_Check_(obj)) return out;
  const auto a = py::reinterpret_borrow<py::object>(obj);
  return out + " of shape " + py::str(a.attr("shape")).cast<std::string>() + " and dtype " +
         py::str(a.attr("dtype")).cast<std::string>();
}

// A sync copies one byte range. A view whose elements have gaps between them (`a[::2]`,
// `m[:, 0]`) would also copy the bytes in the gaps, overwriting whatever the other side holds
// there (device results, or host writes not yet synced): refused. Views that cover their range
// exactly (reversed, transposed) sync correctly. `sync_from_device` writes host memory, so a
// read-only array is refused too.
void check_sync(PyObject* self, const buffer_span& s, const char* what, bool writes_host) {
  if (!py::detail::npy_api::get().PyArray_Check_(self)) return;
  const auto* a = py::detail::array_proxy(self);
  if (writes_host && !(a->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_))
    throw py::value_error(std::string(what) + ": " + describe(self) +
                          " is read-only (its WRITEABLE flag is off), and a sync from the device "
                          "writes into it. Make it writeable with setflags(write=True), or sync "
                          "the buffer it is a view of");
  if (a->flags &
      (py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_F_CONTIGUOUS_))
    return;
  std::size_t count = 1;
  for (int i = 0; i < a->nd; ++i) count *= static_cast<std::size_t>(a->dimensions[i]);
  const auto itemsize =
      static_cast<std::size_t>(py::reinterpret_borrow<py::dtype>(a->descr).itemsize());
  if (count * itemsize != s.bytes)
    throw py::type_error(
        std::string(what) + ": " + describe(self) +
        " is a strided view whose elements have gaps between them (strides " +
        py::str(py::reinterpret_borrow<py::object>(self).attr("strides")).cast<std::string>() +
        "); a sync copies whole byte ranges, so it would also overwrite the "
        "bytes in between. Sync a contiguous slice, or the buffer it was sliced "
        "from");
}

PyObject* array_sync_to(PyObject* self, PyObject*) {
  try {
    const buffer_span s = require_buffer(self, "sync_to_device");
    check_sync(self, s, "sync_to_device", false);
    sync(s, true);
    Py_RETURN_NONE;
  } catch (...) {
    set_python_error_any(std::current_exception());
    return nullptr;
  }
}

PyObject* array_sync_from(PyObject* self, PyObject*) {
  try {
    const buffer_span s = require_buffer(self, "sync_from_device");
    check_sync(self, s, "sync_from_device", true);
    sync(s, false);
    Py_RETURN_NONE;
  } catch (...) {
    set_python_error_any(std::current_exception());
    return nullptr;
  }
}

PyMethodDef sync_to_def = {"sync_to_device", &array_sync_to, METH_NOARGS,
                           "Copies this array's bytes from host memory to the device (blocks). "
                           "A slice copies only its own bytes."};
PyMethodDef sync_from_def = {"sync_from_device", &array_sync_from, METH_NOARGS,
                             "Copies this array's bytes from the device to host memory (blocks). "
                             "A slice copies only its own bytes."};

}  // namespace

namespace {

PyTypeObject* array_class = nullptr;  // fpyga.PynqBuffer, once installed

// Exact type comparisons first: PynqBuffer and its views are the common case, and the generic
// checks walk the type's MRO.
bool is_buffer(PyObject* o) { return Py_TYPE(o) == buffer_type || PyObject_TypeCheck(o, buffer_type); }
bool is_array(const py::detail::npy_api& api, PyObject* o) {
  return Py_TYPE(o) == array_class || api.PyArray_Check_(o);
}

}  // namespace

bool find_buffer(PyObject* obj, buffer_span& out) {
  const auto& api = py::detail::npy_api::get();
  const bool array = is_array(api, obj);
  if (!array) {
    if (!is_buffer(obj)) return false;
    out.buffer = buffer_of(obj);
    out.offset = 0;
    out.bytes = out.buffer->size();
    return true;
  }
  PyObject* base = py::detail::array_proxy(obj)->base;
  while (base != nullptr && !is_buffer(base)) {
    if (!is_array(api, base)) return false;
    base = py::detail::array_proxy(base)->base;
  }
  if (base == nullptr) return false;
  out.buffer = buffer_of(base);

  // The bytes the view spans: from its lowest to its highest element (all of them for a
  // contiguous array; a strided view syncs the range that encloses it).
  const auto* a = py::detail::array_proxy(obj);
  const auto itemsize = static_cast<std::ptrdiff_t>(
      py::reinterpret_borrow<py::dtype>(a->descr).itemsize());
  std::ptrdiff_t lo = 0;
  std::ptrdiff_t hi = itemsize;
  bool empty = false;
  for (int i = 0; i < a->nd; ++i) {
    const auto n = static_cast<std::ptrdiff_t>(a->dimensions[i]);
    if (n == 0) {
      empty = true;
      break;
    }
    const auto step = static_cast<std::ptrdiff_t>(a->strides[i]) * (n - 1);
    (step < 0 ? lo : hi) += step;
  }
  const auto* host = static_cast<const char*>(out.buffer->data());
  const std::ptrdiff_t start = (a->data - host) + lo;
  if (start < 0 || (!empty && static_cast<std::size_t>(start + (hi - lo)) > out.buffer->size()))
    throw py::value_error("array does not lie inside the device buffer it was made from");
  out.offset = static_cast<std::size_t>(start);
  out.bytes = empty ? 0 : static_cast<std::size_t>(hi - lo);
  return true;
}

buffer_span require_buffer(py::handle obj, const char* what) {
  buffer_span s;
  if (!find_buffer(obj.ptr(), s))
    throw py::value_error(std::string(what) +
                          ": this array is not backed by device memory (it is a copy NumPy made, "
                          "for example the result of arithmetic on a buffer). Allocate device "
                          "memory with fpyga.allocate() and write into it with buf[:] = values");
  return s;
}

void bind_buffer(py::module_& m) {
  py::class_<buffer> cls(m, "buffer", py::buffer_protocol(),
                         "A device buffer: 4 KiB-aligned host memory paired with device memory in "
                         "one bank. Exposes its host memory through the buffer protocol.");
  buffer_type = reinterpret_cast<PyTypeObject*>(cls.ptr());
  cls.def(py::init([](const device& dev, std::size_t bytes, std::optional<memory> mem) {
            return buffer(dev, bytes, mem ? *mem : memory{});
          }),
          py::arg("device"), py::arg("bytes"), py::arg("memory") = py::none(),
          "Allocates `bytes` in `memory` (default: the device's default memory).")
      .def_buffer([](buffer& b) {
        return py::buffer_info(b.data(), 1, py::format_descriptor<std::uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(b.size())}, {py::ssize_t{1}});
      })
      .def_property_readonly("size", &buffer::size)
      .def_property_readonly("address", [](const buffer& b) {
        return reinterpret_cast<std::uintptr_t>(b.data());
      }, "Host address of the buffer's memory.")
      .def("sync_to_device", &buffer::sync_to_device, py::arg("bytes") = buffer::all,
           py::arg("offset") = 0)
      .def("sync_from_device", &buffer::sync_from_device, py::arg("bytes") = buffer::all,
           py::arg("offset") = 0)
      .def_property_readonly("device_address", &buffer::device_address)
      .def_property_readonly("memory", &buffer::memory)
      .def_property_readonly("device", &buffer::device)
      .def("free", &buffer::free, "Releases the device memory now.")
      .def_property_readonly("freed", &buffer::freed)
      .def("__eq__", [](const buffer& a, const buffer& b) { return a == b; })
      .def("__hash__", [](const buffer& b) { return std::hash<const void*>()(b.impl().get()); })
      .def("__repr__", [](const buffer& b) {
        return "<fpyga buffer " + std::to_string(b.size()) + " bytes>";
      });

  m.def(
      "buffer_of", [](py::handle obj) { return *require_buffer(obj, "buffer_of").buffer; },
      py::arg("array"), "The `_core.buffer` behind a buffer or a view of one.");
  m.def(
      "span_of",
      [](py::handle obj) {
        buffer_span s = require_buffer(obj, "span_of");
        return py::make_tuple(*s.buffer, s.offset, s.bytes);
      },
      py::arg("array"), "(buffer, byte offset, byte count) of the device memory `array` covers.");

  // Installs PynqBuffer's hot methods as C methods of the Python class (no per-call dispatch
  // beyond CPython's own).
  m.def(
      "_install_array_methods",
      [](py::object cls) {
        if (!PyType_Check(cls.ptr())) throw py::type_error("_install_array_methods expects a class");
        auto* type = reinterpret_cast<PyTypeObject*>(cls.ptr());
        if (!PyType_IsSubtype(type, py::detail::npy_api::get().PyArray_Type_))
          throw py::type_error("_install_array_methods expects a numpy.ndarray subclass");
        array_class = type;
        for (PyMethodDef* def : {&sync_to_def, &sync_from_def}) {
          auto descr = py::reinterpret_steal<py::object>(PyDescr_NewMethod(type, def));
          if (!descr) throw py::error_already_set();
          cls.attr(def->ml_name) = descr;
        }
        cls.attr("flush") = cls.attr("sync_to_device");
        cls.attr("invalidate") = cls.attr("sync_from_device");
        auto property = py::module_::import("builtins").attr("property");
        auto address = py::cpp_function(
            [](py::handle self) {
              const buffer_span s = require_buffer(self, "device_address");
              return s.buffer->device_address() + s.offset;
            },
            py::name("device_address"), py::is_method(cls));
        cls.attr("device_address") =
            property(address, py::none(), py::none(),
                     "Device address of this array's first byte (its bank's address space).");
        cls.attr("physical_address") = cls.attr("device_address");
      },
      py::arg("cls"));
}

}  // namespace fpyga::python
