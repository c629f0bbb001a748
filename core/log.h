#pragma once
// Minimal leveled logging to stderr; one line per call, safe from any thread.
#include <string_view>

namespace frugal::log {

enum class Level { kDebug, kInfo, kWarn, kError };
void set_level(Level l);
void write(Level l, std::string_view msg);
// Whether a line at this level would be written: guard messages that cost to build.
bool enabled(Level l);
inline void info(std::string_view m) { write(Level::kInfo, m); }
inline void warn(std::string_view m) { write(Level::kWarn, m); }
inline void error(std::string_view m) { write(Level::kError, m); }
inline void debug(std::string_view m) { write(Level::kDebug, m); }

}  // namespace frugal::log
