// Tests for backends/engine/format/gguf.h against the real fixture file.
#include "backends/engine/format/gguf.h"

#include <doctest/doctest.h>

#include <vector>

#include "tests/engine/format/fixtures.h"

using namespace frugal::engine;

TEST_CASE("gguf: opens the llama-2 fixture") {
  FRUGAL_REQUIRE_FIXTURE("llama-2-tiny-random.gguf");
  auto f = GgufFile::open(frugal::engine::testing::fixture_path("llama-2-tiny-random.gguf"));
  REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
  CHECK(f->version() == 3);
  CHECK(f->architecture() == "llama");
  auto tokens = f->get_string_array("tokenizer.ggml.tokens");
  REQUIRE(tokens.ok());
  CHECK(tokens->size() == 32000);
  CHECK((*tokens)[15043] == "\xE2\x96\x81Hello");
  auto scores = f->get_f32_array("tokenizer.ggml.scores");
  REQUIRE(scores.ok());
  CHECK(scores->size() == 32000);
  CHECK(f->get_string("tokenizer.ggml.model").value() == "llama");
  CHECK_FALSE(f->tensors().empty());
  for (const auto& t : f->tensors()) {
    CAPTURE(t.name);
    CHECK(t.data != nullptr);
    CHECK(t.n_bytes == row_size(t.type, t.ne[0]) * static_cast<size_t>(t.n_rows()));
    if (has_reference_kernels(t.type)) {
      std::vector<float> row(static_cast<size_t>(t.ne[0]));
      CHECK(dequantize_row(t.type, t.data, row.data(), t.ne[0]).ok());
    }
  }
  const TensorInfo* emb = f->tensor("token_embd.weight");
  REQUIRE(emb != nullptr);
  CHECK(emb->ne[1] == 32000);
  CHECK(f->tensor("nope") == nullptr);
  // Getter errors name the key and the type mismatch.
  auto bad = f->get_string("llama.block_count");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("llama.block_count") != std::string::npos);
  CHECK(f->get_u32("missing.key").error().message.find("missing") != std::string::npos);
}

TEST_CASE("gguf: missing file and non-gguf bytes") {
  auto f = GgufFile::open("/nonexistent/model.gguf");
  REQUIRE_FALSE(f.ok());
  CHECK(f.error().kind == frugal::ErrorKind::kNotFound);
  const char junk[] = "not a gguf file at all, just text";
  auto g = GgufFile::parse_bytes(junk, sizeof junk, "junk");
  REQUIRE_FALSE(g.ok());
  CHECK(g.error().message.find("bad magic") != std::string::npos);
}
