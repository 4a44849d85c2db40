// Warnings and log messages: diagnostics that do not stop the program (the emulated device's
// sync checker, backends that could not be loaded).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace fpyga {

/// Severity of a message, numbered as Python's logging levels. Messages below the process's log
/// level are dropped; warnings are `warning`.
enum class log_level { debug = 10, info = 20, warning = 30, error = 40, off = 100 };

/// Receives each warning's text. The default handler writes "fpyga warning: <text>" to stderr.
/// The Python bindings install one that calls warnings.warn with fpyga.FpygaWarning.
using warning_handler = std::function<void(std::string_view message)>;

/// Installs `handler` (an empty one restores the default) and returns the previous one.
/// Thread-safe; the handler may be called from any thread that uses fpyga, also with fpyga's
/// own locks held: it must not call back into fpyga, and should not block.
warning_handler set_warning_handler(warning_handler handler);

/// Reports a warning through the installed handler (unless the log level is above `warning`).
void warn(std::string_view message);

/// Receives debug and info messages. The default handler writes "fpyga <level>: <text>" to
/// stderr; the Python bindings forward them to the logging module's "fpyga" logger.
using log_handler = std::function<void(log_level level, std::string_view message)>;

/// Installs `handler` (an empty one restores the default) and returns the previous one.
/// Same rules as set_warning_handler.
log_handler set_log_handler(log_handler handler);

/// Reports a message of `level`: warnings go to the warning handler, others to the log handler,
/// when `level` is at least the process's log level.
void log(log_level level, std::string_view message);

/// The process's log level: FPYGA_LOG_LEVEL when set (debug, info, warning, error or off, or
/// Python's numbers 10..50), else warning.
log_level current_log_level();

/// Sets the process's log level (overrides FPYGA_LOG_LEVEL).
void set_log_level(log_level level);

/// "debug", "info", "warning", "error", "off".
std::string_view to_string(log_level level);

/// Delivers warnings that were noticed where no handler may run (inside a signal handler) and
/// are still pending. fpyga calls this itself on every buffer sync, kernel start and buffer free.
void flush_warnings();

}  // namespace fpyga
