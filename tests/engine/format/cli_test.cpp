// Tests for backends/engine/format/cli.h against the fixture: inspect output and
// `tokenize` reproducing SentencePiece's vectors.
#include "backends/engine/format/cli.h"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <fstream>
#include <sstream>

#include "tests/engine/format/fixtures.h"

using namespace frugal::engine;
using frugal::engine::testing::fixture_path;

TEST_CASE("cli: models inspect on the fixture") {
  FRUGAL_REQUIRE_FIXTURE("llama-2-tiny-random.gguf");
  std::ostringstream out, err;
  CHECK(models_inspect_main(fixture_path("llama-2-tiny-random.gguf"), out, err) == 0);
  const std::string s = out.str();
  CHECK(err.str().empty());
  CHECK(s.find("gguf version: 3") != std::string::npos);
  CHECK(s.find("architecture: llama") != std::string::npos);
  CHECK(s.find("tokenizer.ggml.tokens") != std::string::npos);
  CHECK(s.find("array[string]") != std::string::npos);
  CHECK(s.find("(32000 items)") != std::string::npos);  // abbreviated, with the count
  CHECK(s.find("\"<unk>\", \"<s>\", \"</s>\"") != std::string::npos);
  CHECK(s.find("<0x05>") == std::string::npos);         // only the first few items
  CHECK(s.find("token_embd.weight") != std::string::npos);
  CHECK(s.find("[8, 32000]") != std::string::npos);
  CHECK(s.find("f16") != std::string::npos);
  CHECK(s.find("512000") != std::string::npos);  // 8 x 32000 x 2 bytes
}

TEST_CASE("cli: models inspect errors") {
  std::ostringstream out, err;
  CHECK(models_inspect_main("/nonexistent.gguf", out, err) == 1);
  CHECK(err.str().find("/nonexistent.gguf") != std::string::npos);
}

TEST_CASE("cli: tokenize reproduces the SentencePiece vectors") {
  FRUGAL_REQUIRE_FIXTURE("llama-2-tiny-random.gguf");
  FRUGAL_REQUIRE_FIXTURE("llama2-spm-vectors.jsonl");
  std::ifstream vectors(fixture_path("llama2-spm-vectors.jsonl"));
  std::string line, input;
  std::vector<std::string> expected;
  simdjson::ondemand::parser parser;
  while (std::getline(vectors, line)) {
    if (line.empty()) continue;
    simdjson::padded_string padded(line);
    auto doc = parser.iterate(padded);
    std::string_view text;
    REQUIRE(doc["text"].get_string().get(text) == simdjson::SUCCESS);
    input += json_quote(text) + "\n";
    std::string ids = "[";
    simdjson::ondemand::array arr;
    REQUIRE(doc["ids"].get_array().get(arr) == simdjson::SUCCESS);
    bool first = true;
    for (auto v : arr) {
      if (!first) ids += ", ";
      first = false;
      ids += std::to_string(int64_t(v));
    }
    expected.push_back(ids + "]");
  }
  REQUIRE(expected.size() >= 10);
  std::istringstream in(input + "\n");  // a trailing blank line is skipped
  std::ostringstream out, err;
  REQUIRE(tokenize_main(fixture_path("llama-2-tiny-random.gguf"), in, out, err) == 0);
  CHECK(err.str().empty());
  std::istringstream got(out.str());
  size_t n = 0;
  while (std::getline(got, line)) {
    REQUIRE(n < expected.size());
    CHECK(line == expected[n]);
    ++n;
  }
  CHECK(n == expected.size());
}

TEST_CASE("cli: tokenize errors") {
  FRUGAL_REQUIRE_FIXTURE("llama-2-tiny-random.gguf");
  for (const char* bad : {"not json\n", "\"ok\"\n{\"text\": 1}\n", "\"a\" \"b\"\n", "42\n"}) {
    CAPTURE(bad);
    std::istringstream in(bad);
    std::ostringstream out, err;
    CHECK(tokenize_main(fixture_path("llama-2-tiny-random.gguf"), in, out, err) == 1);
    CHECK(err.str().find("line") != std::string::npos);
  }
  std::istringstream in("\"x\"\n");
  std::ostringstream out, err;
  CHECK(tokenize_main("/nonexistent.gguf", in, out, err) == 1);
  CHECK(!err.str().empty());
}

TEST_CASE("cli: json_quote") {
  CHECK(json_quote("a\"b\\c\n\x01") == "\"a\\\"b\\\\c\\n\\u0001\"");
  CHECK(json_quote("caf\xC3\xA9") == "\"caf\xC3\xA9\"");
  CHECK(json_quote("\xFF") == "\"\\ufffd\"");
}
