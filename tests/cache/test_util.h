#pragma once
#include <deque>
// Helpers shared by the cache tests.
#include <doctest/doctest.h>
#include <simdjson.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "core/chat.h"
#include "tests/support/temp_dir.h"

namespace frugal::cache::test {

using frugal::test::TempDir;

// Parses an OpenAI chat body. The request's `root` is not valid afterwards (the
// cache never reads it).
inline ChatRequest parse_request(std::string_view body) {
  // Every parsed document stays alive for the whole test run, so `root` stays valid.
  static std::deque<simdjson::dom::parser> parsers;
  auto r = parse_chat_body(parsers.emplace_back(), body);
  if (!r) FAIL("parse failed: " << r.error().message << " in " << body);
  return std::move(r).value();
}

}  // namespace frugal::cache::test
