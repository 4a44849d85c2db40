// Structured logs: one JSON object per line on stderr (time, level, message, fields).
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

namespace fpyga::serve {

void log_event(const char* level, const std::string& msg,
               std::initializer_list<std::pair<const char*, std::string>> fields = {});

}  // namespace fpyga::serve
