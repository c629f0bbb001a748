#pragma once
// Golden-test helpers: compare JSON after a parse+minify round trip, so expected
// values can be written readably while still pinning key order and every value.
#include <simdjson.h>

#include <string>
#include <string_view>

namespace frugal::test {

inline std::string canon(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (parser.parse(json.data(), json.size()).get(e)) return "<invalid JSON: " + std::string(json) + ">";
  return simdjson::minify(e);
}

}  // namespace frugal::test
