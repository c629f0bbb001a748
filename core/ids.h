#pragma once
#include <cstdint>
#include <string>

namespace frugal {

// A 128-bit random id in lowercase hex ("frg-" + 32 hex digits). Thread-safe.
std::string new_request_id();
// Monotonic microseconds, for latency accounting.
int64_t mono_us();
// Wall-clock microseconds since the Unix epoch, for records.
int64_t wall_us();

}  // namespace frugal
