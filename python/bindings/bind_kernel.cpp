// fpyga::kernel and fpyga::run. `call` and `start` take the Python arguments as they come and
// convert them in C++ following a plan made once per kernel: a PynqBuffer (or any view of one)
// becomes a buffer argument at the view's byte offset, a Python number a scalar. The GIL is
// released while the kernel runs and while a wait blocks.
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "kernel_call.hpp"

namespace fpyga::python {

py_kernel::py_kernel(fpyga::kernel kernel) : k(std::move(kernel)) {
  for (const auto& a : k.args()) {
    if (a.kind == arg_kind::stream) continue;  // fed by its stream connection, not by the host
    arg_plan p;
    p.name = a.name;
    p.type = a.type;
    p.global = a.kind == arg_kind::global;
    if (!p.global && a.ctype.bits > 64) {
      p.wide_bytes = a.ctype.storage_bytes();
      p.wide_signed = a.ctype.cat == c_type::category::signed_integer ||
                      a.ctype.cat == c_type::category::signed_fixed;
    }
    plan.push_back(std::move(p));
  }
}

namespace {

[[noreturn]] void fail(PyObject* type, const py_kernel& k, std::size_t i, const std::string& what) {
  std::string where = "kernel '" + k.k.name() + "': argument ";
  if (i < k.plan.size())
    where += "'" + k.plan[i].name + "' (" + k.plan[i].type + ")";
  else
    where += std::to_string(i);
  PyErr_SetString(type, (where + " " + what).c_str());
  throw py::error_already_set();
}

std::string type_name(PyObject* o) { return Py_TYPE(o)->tp_name; }

// A kernel sees a buffer argument as contiguous memory from its first element, and its
// elements as plain data: a strided or transposed view would make it read other elements, and
// an object dtype holds pointers the kernel would overwrite.
void check_array_arg(const py_kernel& k, std::size_t i, PyObject* o) {
  if (!py::detail::npy_api::get().PyArray_Check_(o)) return;
  const auto* a = py::detail::array_proxy(o);
  const auto dtype = py::reinterpret_borrow<py::dtype>(a->descr);
  const bool contiguous = (a->flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) != 0;
  if (contiguous && !(dtype.flags() & 0x01)) return;  // 0x01: NPY_ITEM_HASOBJECT
  const auto arr = py::reinterpret_borrow<py::object>(o);
  const std::string what = "(shape " + py::str(arr.attr("shape")).cast<std::string>() + ", dtype " +
                           py::str(arr.attr("dtype")).cast<std::string>();
  if (!contiguous)
    fail(PyExc_TypeError, k, i,
         "is a non-contiguous view " + what + ", strides " +
             py::str(arr.attr("strides")).cast<std::string>() +
             "): the kernel reads a buffer as contiguous memory from its first element, so it "
             "would see other elements than the view's. Pass a contiguous slice, or copy the "
             "view into a buffer (buf[:] = view)");
  fail(PyExc_TypeError, k, i,
       "has a dtype holding object references " + what +
           "): only plain-data dtypes can back a device buffer");
}

void convert_one(const py_kernel& k, std::size_t i, PyObject* o, converted_args& out) {
  buffer_span s;
  if (find_buffer(o, s)) {
    if (Py_TYPE(o) != buffer_type) check_array_arg(k, i, o);
    out.values.emplace_back(*s.buffer, s.offset);
    return;
  }
  const arg_plan* p = i < k.plan.size() ? &k.plan[i] : nullptr;
  if (PyBool_Check(o)) {
    out.values.emplace_back(o == Py_True);
    return;
  }
  if (PyFloat_Check(o)) {
    out.values.emplace_back(PyFloat_AS_DOUBLE(o));
    return;
  }
  const bool array = py::detail::npy_api::get().PyArray_Check_(o);
  if (array && py::detail::array_proxy(o)->nd != 0) {
    if (p != nullptr && !p->global)
      fail(PyExc_TypeError, k, i, "expects a number, got an array");
    fail(PyExc_TypeError, k, i,
         "expects a buffer from fpyga.allocate() (or a slice of one), got an array that is not "
         "backed by device memory (a copy NumPy made, or an ordinary array)");
  }
  py::object index;
  if (!PyLong_Check(o) && PyIndex_Check(o)) {  // NumPy integers
    index = py::reinterpret_steal<py::object>(PyNumber_Index(o));
    if (!index) throw py::error_already_set();
    o = index.ptr();
  }
  if (PyLong_Check(o)) {
    if (p != nullptr && p->wide_bytes > 0) {
      std::vector<std::byte> raw(p->wide_bytes);
      py::object bytes;
      try {
        bytes = py::reinterpret_borrow<py::object>(o).attr("to_bytes")(p->wide_bytes, "little",
                                                                        py::arg("signed") = p->wide_signed);
      } catch (py::error_already_set&) {
        fail(PyExc_ValueError, k, i, "is out of range: " + py::str(o).cast<std::string>());
      }
      const std::string_view v = py::reinterpret_borrow<py::bytes>(bytes);
      std::memcpy(raw.data(), v.data(), raw.size());
      out.wide.push_back(std::move(raw));
      out.values.emplace_back(std::span<const std::byte>(out.wide.back()));
      return;
    }
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow == 0) {
      if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
      out.values.emplace_back(static_cast<std::int64_t>(v));
      return;
    }
    if (overflow > 0) {
      const unsigned long long u = PyLong_AsUnsignedLongLong(o);
      if (!PyErr_Occurred()) {
        out.values.emplace_back(static_cast<std::uint64_t>(u));
        return;
      }
      PyErr_Clear();
    }
    fail(PyExc_ValueError, k, i,
         "is out of range: " + py::str(o).cast<std::string>() + " does not fit in 64 bits");
  }
  if (Py_TYPE(o)->tp_as_number != nullptr && Py_TYPE(o)->tp_as_number->nb_float != nullptr &&
      !PyObject_CheckBuffer(o)) {  // NumPy floats other than float64
    const double d = PyFloat_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    out.values.emplace_back(d);
    return;
  }
  if (p != nullptr && p->global)
    fail(PyExc_TypeError, k, i,
         "expects a buffer from fpyga.allocate() (or a slice of one), got " + type_name(o) +
             (py::detail::npy_api::get().PyArray_Check_(o)
                  ? " that is not backed by device memory (a copy NumPy made)"
                  : ""));
  fail(PyExc_TypeError, k, i, "expects a number, got " + type_name(o));
}

}  // namespace

void convert_args(const py_kernel& k, PyObject* const* args, std::size_t npos, PyObject* kwnames,
                  converted_args& out, const char* skip) {
  out.values.clear();
  out.wide.clear();
  const std::size_t nkw = kwnames ? static_cast<std::size_t>(PyTuple_GET_SIZE(kwnames)) : 0;
  if (nkw == 0) {
    out.values.reserve(npos);
    out.wide.reserve(npos);
    for (std::size_t i = 0; i < npos; ++i) convert_one(k, i, args[i], out);
    return;
  }
  // Keywords: place each by name, then require every argument exactly once.
  const std::size_t n = std::max(npos, k.plan.size());
  std::vector<PyObject*> slots(n, nullptr);
  for (std::size_t i = 0; i < npos; ++i) slots[i] = args[i];
  for (std::size_t j = 0; j < nkw; ++j) {
    const char* utf8 = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, j));
    if (utf8 == nullptr) throw py::error_already_set();
    const std::string name = utf8;
    if (skip != nullptr && name == skip) continue;
    std::size_t i = 0;
    // A keyword argument name gets a trailing underscore in signatures (`in` -> `in_`).
    while (i < k.plan.size() && k.plan[i].name != name && k.plan[i].name + "_" != name) ++i;
    if (i == k.plan.size()) {
      for (const auto& a : k.k.args())
        if (a.kind == arg_kind::stream && (a.name == name || a.name + "_" == name))
          throw py::type_error("kernel '" + k.k.name() + "': argument '" + a.name +
                               "' is connected to a stream, not passed by the host");
      std::string names;
      for (const auto& p : k.plan) names += (names.empty() ? "" : ", ") + p.name;
      throw py::type_error("kernel '" + k.k.name() + "' has no argument '" + name +
                           "' (arguments: " + names + ")");
    }
    if (slots[i] != nullptr)
      throw py::type_error("kernel '" + k.k.name() + "': argument '" + name +
                           "' given both by position and by keyword");
    slots[i] = args[npos + j];
  }
  std::string missing;
  for (std::size_t i = 0; i < n; ++i)
    if (slots[i] == nullptr) missing += (missing.empty() ? "'" : ", '") + k.plan[i].name + "'";
  if (!missing.empty())
    throw py::type_error("kernel '" + k.k.name() + "': missing argument(s) " + missing);
  out.values.reserve(n);
  out.wide.reserve(n);
  for (std::size_t i = 0; i < n; ++i) convert_one(k, i, slots[i], out);
}

void convert_args(const py_kernel& k, const py::args& args, const py::kwargs& kwargs,
                  converted_args& out) {
  std::vector<PyObject*> flat;
  const std::size_t npos = args.size();
  for (std::size_t i = 0; i < npos; ++i) flat.push_back(PyTuple_GET_ITEM(args.ptr(), i));
  py::list names;
  if (kwargs) {
    for (auto item : kwargs) {
      names.append(item.first);
      flat.push_back(item.second.ptr());
    }
  }
  py::tuple kwnames(names);
  convert_args(k, flat.data(), npos, names.empty() ? nullptr : kwnames.ptr(), out);
}

namespace {

// A blocking wait from Python wakes this often to run signal handlers (Ctrl-C raises
// KeyboardInterrupt at the next wake-up). A run that ends sooner returns at once: the backend's
// wait returns when the run ends, not at the end of the slice.
constexpr std::chrono::milliseconds signal_slice{50};

/// Waits for `r` until it ends or `deadline` passes, with the GIL released, in slices between
/// which pending signals are handled (their exception propagates; the run goes on). Returns
/// the run's state at the end.
run_state wait_sliced(fpyga::run& r,
                      std::optional<std::chrono::steady_clock::time_point> deadline) {
  for (;;) {
    auto slice = std::chrono::duration_cast<std::chrono::milliseconds>(signal_slice);
    if (deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      slice = std::clamp(left, std::chrono::milliseconds(0), slice);
    }
    run_state s;
    {
      py::gil_scoped_release release;
      s = r.wait(slice);
    }
    if (s == run_state::completed || s == run_state::error) return s;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (deadline && std::chrono::steady_clock::now() >= *deadline) return s;
  }
}

// Python calls in progress and Python run handles not yet waited on, on any thread: while
// there are some, a call() may queue behind them, so the main thread's call() waits the way
// wait() does instead of blocking in the backend (see kernel_call).
std::atomic<long> python_busy{0};

/// Counts as busy from construction until reset or destruction (shared by copies of a run).
std::shared_ptr<void> busy_token() {
  python_busy.fetch_add(1, std::memory_order_relaxed);
  return {nullptr, [](void*) { python_busy.fetch_sub(1, std::memory_order_relaxed); }};
}

unsigned long main_thread_ident = 0;  // signals are handled on the main thread only

/// `_core.run`: a started run, keeping its arguments alive until it has been waited on.
/// Waiting again after a successful wait returns at once, as PYNQ's wait handles do.
struct py_run {
  fpyga::run r;
  py::object keep;
  std::shared_ptr<void> busy;
  bool waited = false;

  void wait() {
    if (waited) return;
    wait_sliced(r, std::nullopt);
    {
      py::gil_scoped_release release;
      r.wait();  // the run has ended: returns at once, or throws its error
    }
    waited = true;
    keep = py::none();
    busy.reset();
  }
  std::string wait_for(double seconds) {
    if (std::isnan(seconds) || seconds < 0)
      throw py::value_error(
          "wait_for(seconds): seconds must be a non-negative number or inf "
          "(wait until done), got " +
          py::repr(py::float_(seconds)).cast<std::string>());
    if (waited) return to_string(run_state::completed);
    std::optional<std::chrono::steady_clock::time_point> deadline;
    // Beyond a century is "until done" (inf included): no time point overflows.
    if (seconds < 100.0 * 365 * 24 * 3600)
      deadline = std::chrono::steady_clock::now() +
                 std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                     std::chrono::duration<double>(seconds));
    return to_string(wait_sliced(r, deadline));
  }
  bool done() const { return waited || r.done(); }
};

// Conversions reuse per-thread storage; a nested call (from a __index__ that calls a kernel)
// gets its own.
struct scratch {
  converted_args args;
  bool busy = false;
};

template <class F>
auto with_scratch(F&& f) {
  thread_local scratch s;
  if (s.busy) {
    converted_args local;
    return f(local);
  }
  s.busy = true;
  struct unbusy {
    scratch& s;
    ~unbusy() { s.busy = false; }
  } guard{s};
  return f(s.args);
}

std::vector<fpyga::run> runs_of(py::handle waitfor) {
  std::vector<fpyga::run> runs;
  if (waitfor.is_none()) return runs;
  for (auto h : waitfor) {
    // PYNQ skips None entries: chains are built as `waitfor=(previous, None)`.
    if (h.is_none()) continue;
    auto* pr = py::isinstance<py_run>(h) ? &h.cast<py_run&>() : nullptr;
    if (pr == nullptr)
      throw py::type_error("waitfor expects handles returned by start(), got " +
                           std::string(Py_TYPE(h.ptr())->tp_name));
    runs.push_back(pr->r);
  }
  return runs;
}

py_kernel* kernel_of(PyObject* self) {
  auto* k = static_cast<py_kernel*>(
      reinterpret_cast<py::detail::instance*>(self)->get_value_and_holder().value_ptr());
  if (k == nullptr)
    throw py::type_error("kernel object is not initialised (a subclass must call super().__init__)");
  return k;
}

// `call` and `start` are CPython vectorcall methods: the arguments arrive as a C array, with no
// tuple or dict built per call, and are converted straight into arg_values.
// Runs started by call()s that a signal interrupted, with their arguments: kept (never freed,
// so never torn down after the interpreter) until they end, since the caller has no handle.
py::list* interrupted_runs = nullptr;

// The main thread's call() while other Python runs or calls may hold the compute units: a start
// and a wait in slices, so Ctrl-C interrupts it (the run goes on and is kept until it ends).
[[gnu::noinline]] void call_interruptibly(const py_kernel& k, PyObject* const* args,
                                          Py_ssize_t nargs, PyObject* kwnames) {
  py_run r;
  r.r = with_scratch([&](converted_args& c) {
    convert_args(k, args, static_cast<std::size_t>(nargs), kwnames, c);
    py::gil_scoped_release release;
    return k.k.start_args(c.values);
  });
  r.busy = busy_token();
  try {
    wait_sliced(r.r, std::nullopt);
  } catch (py::error_already_set&) {
    const Py_ssize_t n = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    py::tuple keep(n);
    for (Py_ssize_t i = 0; i < n; ++i)
      keep[static_cast<std::size_t>(i)] = py::reinterpret_borrow<py::object>(args[i]);
    r.keep = std::move(keep);
    py::list still;
    for (auto h : *interrupted_runs)
      if (!h.cast<const py_run&>().r.done()) still.append(h);
    still.append(py::cast(std::move(r)));
    *interrupted_runs = std::move(still);
    throw;
  }
  py::gil_scoped_release release;
  r.r.wait();  // ended: returns at once, or throws the run's error
}

PyObject* kernel_call(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  try {
    const py_kernel& k = *kernel_of(self);
    // The main thread's calls are not counted: it never waits behind its own call.
    const bool main = PyThread_get_thread_ident() == main_thread_ident;
    if (main && python_busy.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      call_interruptibly(k, args, nargs, kwnames);
      Py_RETURN_NONE;
    }
    if (!main) python_busy.fetch_add(1, std::memory_order_relaxed);
    struct done {
      bool counted;
      ~done() {
        if (counted) python_busy.fetch_sub(1, std::memory_order_relaxed);
      }
    } guard{!main};
    with_scratch([&](converted_args& c) {
      convert_args(k, args, static_cast<std::size_t>(nargs), kwnames, c);
      py::gil_scoped_release release;
      k.k.call_args(c.values);
      return 0;
    });
    Py_RETURN_NONE;
  } catch (...) {
    set_python_error_any(std::current_exception());
    return nullptr;
  }
}

PyObject* kernel_start(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  try {
    const py_kernel& k = *kernel_of(self);
    py::object waitfor = py::none();
    const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t j = 0; j < nkw; ++j)
      if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, j), "waitfor") == 0)
        waitfor = py::reinterpret_borrow<py::object>(args[nargs + j]);
    const auto runs = runs_of(waitfor);
    py_run r;
    r.r = with_scratch([&](converted_args& c) {
      convert_args(k, args, static_cast<std::size_t>(nargs), kwnames, c, "waitfor");
      py::gil_scoped_release release;
      return k.k.start_args(c.values, runs);
    });
    // Keep every argument object alive until the run has been waited on.
    py::tuple keep(nargs + nkw);
    for (Py_ssize_t i = 0; i < nargs + nkw; ++i)
      keep[static_cast<std::size_t>(i)] = py::reinterpret_borrow<py::object>(args[i]);
    r.keep = std::move(keep);
    r.busy = busy_token();
    return py::cast(std::move(r)).release().ptr();
  } catch (...) {
    set_python_error_any(std::current_exception());
    return nullptr;
  }
}

PyMethodDef kernel_call_def = {
    "call", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&kernel_call)),
    METH_FASTCALL | METH_KEYWORDS,
    "call(*args, **kwargs)\n--\n\nRuns the kernel with these arguments and waits for it (the "
    "GIL is released meanwhile). Buffers are PynqBuffers (or slices of them), scalars Python or "
    "NumPy numbers. Raises TypeError or ValueError naming a wrong argument."};
PyMethodDef kernel_start_def = {
    "start", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&kernel_start)),
    METH_FASTCALL | METH_KEYWORDS,
    "start(*args, waitfor=(), **kwargs)\n--\n\nStarts the kernel on an idle compute unit once "
    "every run in `waitfor` has finished, and returns a handle with wait() and done."};

}  // namespace

void bind_kernel(py::module_& m) {
  main_thread_ident =
      py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
  interrupted_runs = new py::list();  // deliberately never freed: see its declaration
  py::class_<kernel_arg>(m, "kernel_arg", "One argument of a kernel as the host sees it.")
      .def_readonly("index", &kernel_arg::index)
      .def_readonly("name", &kernel_arg::name)
      .def_readonly("type", &kernel_arg::type)
      .def_property_readonly("kind", [](const kernel_arg& a) { return std::string(to_string(a.kind)); })
      .def_readonly("offset", &kernel_arg::offset)
      .def_readonly("size", &kernel_arg::size)
      .def_readonly("memories", &kernel_arg::memories)
      .def_property_readonly("pointer", [](const kernel_arg& a) { return a.ctype.pointer; })
      .def_property_readonly("bits", [](const kernel_arg& a) { return a.ctype.bits; })
      .def_property_readonly("storage_bytes", [](const kernel_arg& a) { return a.ctype.storage_bytes(); })
      .def("__repr__", [](const kernel_arg& a) {
        return "<kernel_arg " + std::to_string(a.index) + " " + a.name + ": " + a.type + ">";
      });

  py::class_<py_run>(m, "run", "A started kernel execution (PYNQ's wait handle).")
      .def("wait", &py_run::wait,
           "Blocks until the run has finished (releasing the GIL). Raises RuntimeError if the run "
           "failed.")
      .def("wait_for", &py_run::wait_for, py::arg("seconds"),
           "Blocks at most `seconds`; returns the state then ('completed', 'running', ...).")
      .def_property_readonly("done", &py_run::done, "True once the run has finished.")
      .def_property_readonly("state", [](const py_run& r) {
        return r.waited ? std::string(to_string(run_state::completed)) : std::string(to_string(r.r.state()));
      })
      .def("__repr__", [](const py_run& r) {
        return std::string("<fpyga run ") + (r.done() ? "done>" : "running>");
      });

  py::class_<py_kernel>(m, "kernel", py::dynamic_attr(),
                        "A kernel of a loaded overlay, over one or all of its compute units.")
      .def(py::init([](const overlay& ov, std::string_view name) { return py_kernel(ov.kernel(name)); }),
           py::arg("overlay"), py::arg("name"))
      .def_property_readonly("kernel_name", [](const py_kernel& k) { return k.k.name(); })
      .def_property_readonly("compute_units", [](const py_kernel& k) { return k.k.compute_units(); })
      .def_property_readonly("kernel_args", [](const py_kernel& k) { return k.k.args(); })
      .def(
          "read_register",
          [](const py_kernel& k, std::uint32_t offset) { return k.k.read_register(offset); },
          py::arg("offset"),
          "Reads the 32-bit AXI-lite register at `offset` of the first compute unit.")
      .def(
          "write_register",
          [](const py_kernel& k, std::uint32_t offset, std::uint32_t value) {
            k.k.write_register(offset, value);
          },
          py::arg("offset"), py::arg("value"),
          "Writes the 32-bit AXI-lite register at `offset` of the first compute unit.");
  auto* type = reinterpret_cast<PyTypeObject*>(m.attr("kernel").ptr());
  for (PyMethodDef* def : {&kernel_call_def, &kernel_start_def}) {
    auto descr = py::reinterpret_steal<py::object>(PyDescr_NewMethod(type, def));
    if (!descr) throw py::error_already_set();
    py::setattr(reinterpret_cast<PyObject*>(type), def->ml_name, descr);
  }
}

}  // namespace fpyga::python
