// Warnings: diagnostics that do not stop the program (the emulated device's sync checker).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace fpyga {

/// Receives each warning's text. The default handler writes "fpyga warning: <text>" to stderr.
using warning_handler = std::function<void(std::string_view message)>;

/// Installs `handler` (an empty one restores the default) and returns the previous one.
/// Thread-safe; the handler may be called from any thread that uses fpyga.
warning_handler set_warning_handler(warning_handler handler);

/// Reports a warning through the installed handler.
void warn(std::string_view message);

/// Delivers warnings that were noticed where no handler may run (inside a signal handler) and
/// are still pending. fpyga calls this itself on every buffer sync, kernel start and buffer free.
void flush_warnings();

}  // namespace fpyga
