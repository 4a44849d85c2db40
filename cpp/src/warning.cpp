// Warnings and log messages go to process-wide handlers (stderr by default; tests and the Python
// bindings install their own), filtered by one log level.
#include "fpyga/warning.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
log_handler& current_log_handler() {
  static auto* h = new log_handler;
  return *h;
}

/// FPYGA_LOG_LEVEL read once; an unknown value is said on stderr and leaves `warning`.
log_level level_from_environment() {
  const char* v = std::getenv("FPYGA_LOG_LEVEL");
  if (!v || !*v) return log_level::warning;
  std::string s(v);
  for (auto& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (s == "debug" || s == "10") return log_level::debug;
  if (s == "info" || s == "20") return log_level::info;
  if (s == "warning" || s == "warn" || s == "30") return log_level::warning;
  if (s == "error" || s == "40" || s == "critical" || s == "50") return log_level::error;
  if (s == "off" || s == "none" || s == "quiet") return log_level::off;
  std::fprintf(stderr,
               "fpyga warning: FPYGA_LOG_LEVEL='%s' is not one of debug, info, warning, error, "
               "off; using warning\n",
               v);
  return log_level::warning;
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{static_cast<int>(level_from_environment())};
  return level;
}
}  // namespace

warning_handler set_warning_handler(warning_handler handler) {
  std::lock_guard lock(handler_mutex());
  std::swap(current_handler(), handler);
  return handler;
}

log_handler set_log_handler(log_handler handler) {
  std::lock_guard lock(handler_mutex());
  std::swap(current_log_handler(), handler);
  return handler;
}

log_level current_log_level() { return static_cast<log_level>(level_storage().load()); }

void set_log_level(log_level level) { level_storage().store(static_cast<int>(level)); }

std::string_view to_string(log_level level) {
  switch (level) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warning: return "warning";
    case log_level::error: return "error";
    case log_level::off: return "off";
  }
  return "unknown";
}

void log(log_level level, std::string_view message) {
  if (level == log_level::off || static_cast<int>(level) < level_storage().load()) return;
  if (level == log_level::warning) {
    warning_handler h;
    {
      std::lock_guard lock(handler_mutex());
      h = current_handler();
    }
    if (h) return h(message);
  } else {
    log_handler h;
    {
      std::lock_guard lock(handler_mutex());
      h = current_log_handler();
    }
    if (h) return h(level, message);
  }
  const std::string line =
      "fpyga " + std::string(to_string(level)) + ": " + std::string(message) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void warn(std::string_view message) { log(log_level::warning, message); }

void flush_warnings() {
#ifdef FPYGA_HAVE_EMU_BACKEND
  backend::emu_flush_pending_warnings();
#endif
}

}  // namespace fpyga
