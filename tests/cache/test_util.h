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

namespace frugal::cache::test {

// A fresh directory under TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "frugal-cache-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    REQUIRE(p != nullptr);
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

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
