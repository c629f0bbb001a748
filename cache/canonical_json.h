#pragma once
// Canonical JSON text: the same value always yields the same bytes, whatever the
// key order, whitespace or escaping of the input. Used to hash JSON-valued request
// fields (tool parameters, response_format, tool_choice, tool-call arguments).
#include <simdjson.h>

#include <string>
#include <string_view>

#include "core/error.h"

namespace frugal::cache {

// Object keys sorted (bytewise, stable for duplicates), no whitespace, strings
// re-escaped minimally, numbers: integers as integers; doubles that hold an integral
// value within ±2^53 printed as integers (1.0 == 1), others in shortest round-trip form.
void canonical_json_to(std::string& out, simdjson::dom::element e);

// Parses `json` (thread-local parser) and canonicalises it. Invalid JSON is
// kInvalidRequest.
Result<std::string> canonical_json(std::string_view json);

// canonical_json(json), or `json` itself when it does not parse (e.g. truncated
// tool-call arguments a model produced): hashing must never fail.
std::string canonical_json_or_raw(std::string_view json);

}  // namespace frugal::cache
