// Warnings go to one process-wide handler (stderr by default; tests and the Python bindings
// install their own).
#include "fpyga/warning.hpp"

#include <cstdio>
#include <mutex>
#include <string>

namespace fpyga {
#ifdef FPYGA_HAVE_EMU_BACKEND
namespace backend {
// The emu sync checker notices some problems inside a SIGSEGV handler, where no handler may run;
// it queues them and hands them over here.
void emu_flush_pending_warnings();
}  // namespace backend
#endif

namespace {
// Never destroyed: warnings may still be flushed from atexit handlers and static destructors.
std::mutex& handler_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
warning_handler& current_handler() {
  static auto* h = new warning_handler;
  return *h;
}
}  // namespace

warning_handler set_warning_handler(warning_handler handler) {
  std::lock_guard lock(handler_mutex());
  std::swap(current_handler(), handler);
  return handler;
}

void warn(std::string_view message) {
  warning_handler h;
  {
    std::lock_guard lock(handler_mutex());
    h = current_handler();
  }
  if (h) {
    h(message);
  } else {
    const std::string line = "fpyga warning: " + std::string(message) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

void flush_warnings() {
#ifdef FPYGA_HAVE_EMU_BACKEND
  backend::emu_flush_pending_warnings();
#endif
}

}  // namespace fpyga
