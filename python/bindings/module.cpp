// fpyga._core: the compiled core of the Python package. The pure-Python layer (fpyga/*.py)
// shapes it into PYNQ's API; everything on the per-call path lives here.
#include <atomic>
#include <cstdio>
#include <deque>
#include <exception>
#include <mutex>
#include <string>

#include "bindings.hpp"

namespace fpyga::python {

// The core's exception hierarchy, mapped once to the built-in exceptions a PYNQ user expects,
// carrying the core's message unchanged. Most derived first. Returns false for exceptions that
// are not fpyga's.
bool set_python_error(std::exception_ptr p) {
  try {
    std::rethrow_exception(p);
  } catch (const fpyga::type_error& e) {
    PyErr_SetString(PyExc_TypeError, e.what());
  } catch (const fpyga::value_error& e) {  // also xclbin_error
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const fpyga::memory_error& e) {
    PyErr_SetString(PyExc_MemoryError, e.what());
  } catch (const fpyga::not_supported_error& e) {
    PyErr_SetString(PyExc_NotImplementedError, e.what());
  } catch (const fpyga::error& e) {  // backend_error and the root
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    return false;
  }
  return true;
}

void set_python_error_any(std::exception_ptr p) {
  if (set_python_error(p)) return;
  try {
    std::rethrow_exception(p);
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const std::bad_alloc&) {
    PyErr_SetString(PyExc_MemoryError, "out of memory");
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
}

void bind_errors(py::module_&) {
  py::register_exception_translator([](std::exception_ptr p) {
    if (p && !set_python_error(p)) std::rethrow_exception(p);
  });
}

// ---------------------------------------------------------------------------------------------
// Warnings and log messages from the core reach Python as warnings.warn(..., FpygaWarning) and as
// records of the logging module's "fpyga" logger.
//
// The core may report from any thread, with its own locks held (the emu sync checker, a kernel's
// worker thread), so the handlers never run Python code themselves: running it there could call
// back into fpyga or wait for the GIL under those locks. They queue the message and ask the
// interpreter to deliver it (Py_AddPendingCall, made for this: callable from any thread without
// the GIL). The main thread delivers it as soon as it runs Python again, which for a call made
// from the main thread is the moment that call returns: filters apply there, and under
// `-W error` the FpygaWarning is raised there.
namespace {

struct queued_message {
  log_level level;
  std::string text;
};

std::mutex queue_mutex;
std::deque<queued_message> queue;  // guarded by queue_mutex
bool delivery_scheduled = false;   // guarded by queue_mutex
std::atomic<bool> python_running{false};
PyObject* fpyga_warning = nullptr;  // fpyga.FpygaWarning, owned by the module for the process

int deliver(void*);

/// With queue_mutex held: asks the main thread to deliver, once. False when it cannot be asked.
bool schedule_locked() {
  if (delivery_scheduled) return true;
  if (Py_AddPendingCall(&deliver, nullptr) != 0) return false;
  delivery_scheduled = true;
  return true;
}

void to_stderr(log_level level, std::string_view text) {
  const std::string line = "fpyga " + std::string(to_string(level)) + ": " + std::string(text) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void enqueue(log_level level, std::string_view text) {
  if (python_running.load()) {
    std::lock_guard lock(queue_mutex);
    queue.push_back({level, std::string(text)});
    // A full pending-call queue is rare and short: the message waits for the next one.
    schedule_locked();
    return;
  }
  to_stderr(level, text);  // the interpreter is finalizing: nobody would see it in Python
}

/// Emits one message in Python; -1 with the Python error set when that raised (a filter with
/// action "error", a failing logging handler).
int emit(const queued_message& m) {
  if (m.level == log_level::warning) return PyErr_WarnEx(fpyga_warning, m.text.c_str(), 1);
  PyObject* logging = PyImport_ImportModule("logging");
  if (!logging) return -1;
  PyObject* logger = PyObject_CallMethod(logging, "getLogger", "s", "fpyga");
  Py_DECREF(logging);
  if (!logger) return -1;
  PyObject* r = PyObject_CallMethod(logger, "log", "iss", static_cast<int>(m.level), "%s",
                                    m.text.c_str());
  Py_DECREF(logger);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

/// The pending call: runs in the main thread with the GIL held.
int deliver(void*) {
  std::deque<queued_message> now;
  {
    std::lock_guard lock(queue_mutex);
    delivery_scheduled = false;
    now.swap(queue);
  }
  while (!now.empty()) {
    if (emit(now.front()) < 0) {
      // Raised where Python is now; the rest are delivered at the next opportunity.
      now.pop_front();
      std::lock_guard lock(queue_mutex);
      queue.insert(queue.begin(), now.begin(), now.end());
      if (!queue.empty()) schedule_locked();
      return -1;
    }
    now.pop_front();
  }
  return 0;
}

}  // namespace

void bind_warnings(py::module_& m) {
  fpyga_warning = PyErr_NewExceptionWithDoc(
      "fpyga.FpygaWarning",
      "Warnings from fpyga's core (the emulated device's sync checker, compute units that stopped, "
      "settings that were ignored). Filter them like any warning, e.g. "
      "warnings.simplefilter('error', fpyga.FpygaWarning) or python -W error.",
      PyExc_UserWarning, nullptr);
  if (!fpyga_warning) throw py::error_already_set();
  m.attr("FpygaWarning") = py::handle(fpyga_warning);  // the module keeps a reference too

  python_running.store(true);
  set_warning_handler([](std::string_view text) { enqueue(log_level::warning, text); });
  set_log_handler([](log_level level, std::string_view text) { enqueue(level, text); });
  // At exit, what is queued is delivered while Python still runs; later messages (the sync
  // checker's own atexit report) go to stderr.
  py::module_::import("atexit").attr("register")(py::cpp_function([] {
    python_running.store(false);
    set_warning_handler({});
    set_log_handler({});
    if (deliver(nullptr) < 0) PyErr_Clear();
  }));

  m.def(
      "log_level", [] { return std::string(to_string(current_log_level())); },
      "The core's log level: 'debug', 'info', 'warning', 'error' or 'off' (FPYGA_LOG_LEVEL, "
      "else 'warning').");
  m.def(
      "set_log_level",
      [](const std::string& name) {
        for (auto l : {log_level::debug, log_level::info, log_level::warning, log_level::error,
                       log_level::off})
          if (to_string(l) == name) return set_log_level(l);
        throw value_error("log level '" + name +
                          "' is not one of 'debug', 'info', 'warning', 'error', 'off'");
      },
      py::arg("level"), "Sets the core's log level (overrides FPYGA_LOG_LEVEL).");
  m.def(
      "_warn", [](const std::string& text) { warn(text); }, py::arg("message"),
      "Reports a warning through the core's handler (as the core does; for tests).");
  m.def(
      "_log", [](int level, const std::string& text) { fpyga::log(static_cast<log_level>(level), text); },
      py::arg("level"), py::arg("message"),
      "Reports a log message through the core's handler (as the core does; for tests).");
}

}  // namespace fpyga::python

PYBIND11_MODULE(_core, m) {
  using namespace fpyga::python;
  m.doc() =
      "Compiled core of fpyga: devices, xclbins, overlays, buffers and kernels over the C++ "
      "library libfpyga. Use the PYNQ-shaped API of the `fpyga` package instead of this module.";
  m.attr("__version__") = FPYGA_VERSION;  // project(fpyga VERSION ...), from CMake
  // NumPy first, before any type is registered: where it cannot be imported yet (python -W
  // error::fpyga.FpygaWarning imports fpyga before site-packages are on the path), the failed
  // import leaves nothing behind and a later `import fpyga` succeeds.
  py::module_::import("numpy");
  bind_errors(m);
  bind_warnings(m);
  bind_xclbin(m);
  bind_device(m);
  bind_memory(m);
  bind_buffer(m);
  bind_kernel(m);
  bind_overlay(m);
  bind_bench(m);
  bind_nn(m);
#ifdef FPYGA_HAVE_BIND_FIXED
  bind_fixed(m);
#endif
}
