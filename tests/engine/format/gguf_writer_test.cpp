// Tests for backends/engine/format/gguf_writer.h: write -> read round trips of every
// metadata value type and every tensor type, and the random model generator.
#include "backends/engine/format/gguf_writer.h"

#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <random>

#include "tests/engine/format/temp_dir.h"

using namespace frugal::engine;
using frugal::engine::testing::TempDir;

namespace {

GgufValue scalar(GgufValueType t, int64_t v) {
  GgufValue x;
  x.type = t;
  x.i = v;
  x.u = static_cast<uint64_t>(v);
  return x;
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("gguf writer: metadata of every value type round-trips") {
  GgufWriter w(64);
  w.set("u8", scalar(GgufValueType::kUint8, 200));
  w.set("i8", scalar(GgufValueType::kInt8, -100));
  w.set("u16", scalar(GgufValueType::kUint16, 60000));
  w.set("i16", scalar(GgufValueType::kInt16, -30000));
  w.set_u32("u32", 4000000000u);
  w.set_i32("i32", -2000000000);
  w.set("u64", GgufValue::make_u64(1ull << 60));
  w.set("i64", scalar(GgufValueType::kInt64, -(1ll << 60)));
  w.set_f32("f32", 0.5f);
  GgufValue f64;
  f64.type = GgufValueType::kFloat64;
  f64.f = 1.0 / 3.0;
  w.set("f64", f64);
  w.set_bool("bool", true);
  w.set_string("str", "h\xC3\xA9llo\n");
  w.set_string("empty", "");
  w.set_string_array("strs", {"a", "", "\xE2\x96\x81x"});
  w.set_f32_array("f32s", {1.5f, -2.0f});
  w.set_i32_array("i32s", {});
  w.set("nested", GgufValue::make_array(
                      GgufValueType::kArray,
                      {GgufValue::make_array(GgufValueType::kInt32, {GgufValue::make_i32(1), GgufValue::make_i32(2)}),
                       GgufValue::make_array(GgufValueType::kString, {GgufValue::make_string("x")})}));
  w.set_u32("u32", 7);  // replaces, keeps position
  auto bytes = w.serialize();
  REQUIRE(bytes.ok());
  auto f = GgufFile::parse_bytes(bytes->data(), bytes->size());
  REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
  CHECK(f->alignment() == 64);
  CHECK(f->find("u8")->u == 200);
  CHECK(f->find("i8")->i == -100);
  CHECK(f->find("u16")->u == 60000);
  CHECK(f->find("i16")->i == -30000);
  CHECK(f->get_u32("u32").value() == 7);
  CHECK(f->get_i32("i32").value() == -2000000000);
  CHECK(f->get_u64("u64").value() == (1ull << 60));
  CHECK(f->find("i64")->i == -(1ll << 60));
  CHECK(f->get_f32("f32").value() == 0.5f);
  CHECK(f->find("f64")->f == 1.0 / 3.0);
  CHECK(f->get_bool("bool").value());
  CHECK(f->get_string("str").value() == "h\xC3\xA9llo\n");
  CHECK(f->get_string("empty").value().empty());
  CHECK(f->get_string_array("strs").value() == std::vector<std::string>{"a", "", "\xE2\x96\x81x"});
  CHECK(f->get_f32_array("f32s").value() == std::vector<float>{1.5f, -2.0f});
  CHECK(f->get_i32_array("i32s").value().empty());
  const GgufValue* nested = f->get_array("nested");
  REQUIRE(nested != nullptr);
  REQUIRE(nested->items.size() == 2);
  CHECK(nested->items[0].items[1].i == 2);
  CHECK(nested->items[1].items[0].str == "x");
  // Key order is the insertion order; general.alignment came first.
  CHECK(f->metadata()[0].key == "general.alignment");
  CHECK(f->metadata()[5].key == "u32");
  // Conversions and their errors.
  CHECK(f->get_u32("u8").value() == 200);
  CHECK_FALSE(f->get_u32("i8").ok());  // negative
  CHECK(f->get_i32("u32").value() == 7);
  CHECK_FALSE(f->get_i32("u64").ok());
  auto e = f->get_u32("u64");
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message.find("does not fit") != std::string::npos);
  CHECK(f->get_f32("u16").value() == 60000.0f);
  CHECK_FALSE(f->get_bool("u8").ok());
  CHECK(f->get_u32_or("absent", 9).value() == 9);
  CHECK_FALSE(f->get_u32_or("str", 9).ok());
  CHECK(f->get_string_array("f32s").error().message.find("array of f32") != std::string::npos);
}

TEST_CASE("gguf writer: tensors of every reference type round-trip") {
  TempDir dir;
  std::mt19937 rng(7);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  const GgmlType types[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
                            GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ4_K, GgmlType::kQ6_K};
  GgufWriter w;
  std::vector<std::vector<float>> data;
  for (GgmlType t : types) {
    std::vector<float> x(512 * 3);
    for (auto& v : x) v = gauss(rng);
    REQUIRE(w.add_tensor(std::string("t.") + type_name(t), {512, 3}, t, x).ok());
    data.push_back(std::move(x));
  }
  REQUIRE(w.add_tensor("vec", {5}, GgmlType::kF32, std::vector<float>{1, 2, 3, 4, 5}).ok());
  REQUIRE(w.add_tensor("cube", {32, 2, 2, 2}, GgmlType::kQ8_0, std::vector<float>(256, 0.25f)).ok());
  CHECK_FALSE(w.add_tensor("vec", {5}, GgmlType::kF32, std::vector<float>(5)).ok());        // duplicate
  CHECK_FALSE(w.add_tensor("odd", {48}, GgmlType::kQ8_0, std::vector<float>(48)).ok());     // not a block multiple
  CHECK_FALSE(w.add_tensor("short", {32, 2}, GgmlType::kQ8_0, std::vector<float>(32)).ok());  // size mismatch
  const std::string path = dir.file("all-types.gguf");
  REQUIRE(w.write(path).ok());
  auto f = GgufFile::open(path);
  REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
  CHECK(f->tensors().size() == std::size(types) + 2);
  for (size_t k = 0; k < std::size(types); ++k) {
    const TensorInfo* t = f->tensor(std::string("t.") + type_name(types[k]));
    REQUIRE(t != nullptr);
    CHECK(t->type == types[k]);
    CHECK(t->ne[0] == 512);
    CHECK(t->ne[1] == 3);
    CHECK(reinterpret_cast<uintptr_t>(t->data) % 32 == 0);
    // The file must hold exactly what the reference quantiser produces.
    std::vector<uint8_t> expect(row_size(types[k], 512));
    std::vector<float> got(512), want(512);
    for (int r = 0; r < 3; ++r) {
      REQUIRE(quantize_row(types[k], data[k].data() + r * 512, expect.data(), 512).ok());
      REQUIRE(dequantize_row(types[k], expect.data(), want.data(), 512).ok());
      REQUIRE(dequantize_row(types[k], static_cast<const uint8_t*>(t->data) + r * t->row_bytes(), got.data(), 512).ok());
      CHECK(got == want);
    }
  }
  const TensorInfo* cube = f->tensor("cube");
  REQUIRE(cube != nullptr);
  CHECK(cube->n_dims == 4);
  CHECK(cube->shape_string() == "[32, 2, 2, 2]");
  CHECK(cube->n_bytes == 8 * 34);
  std::vector<float> v(5);
  REQUIRE(dequantize_row(GgmlType::kF32, f->tensor("vec")->data, v.data(), 5).ok());
  CHECK(v == std::vector<float>{1, 2, 3, 4, 5});
}

TEST_CASE("make_random_model: llama and qwen2 are complete and deterministic") {
  TempDir dir;
  SUBCASE("llama, q4_K with fallbacks, untied") {
    ModelShape s;
    s.n_layer = 2;
    s.n_embd = 256;
    s.n_head = 8;
    s.n_head_kv = 2;
    s.n_ff = 96;  // ffn_down rows are 96 long: q4_K falls back to q8_0
    s.n_vocab = 600;
    REQUIRE(make_random_model(s, GgmlType::kQ4_K, 1, dir.file("a.gguf")).ok());
    REQUIRE(make_random_model(s, GgmlType::kQ4_K, 1, dir.file("b.gguf")).ok());
    REQUIRE(make_random_model(s, GgmlType::kQ4_K, 2, dir.file("c.gguf")).ok());
    CHECK(read_all(dir.file("a.gguf")) == read_all(dir.file("b.gguf")));
    CHECK(read_all(dir.file("a.gguf")) != read_all(dir.file("c.gguf")));
    auto f = GgufFile::open(dir.file("a.gguf"));
    REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
    CHECK(f->architecture() == "llama");
    CHECK(f->get_u32("llama.block_count").value() == 2);
    CHECK(f->get_u32("llama.embedding_length").value() == 256);
    CHECK(f->get_u32("llama.attention.head_count_kv").value() == 2);
    CHECK(f->get_f32("llama.rope.freq_base").value() == 10000.0f);
    CHECK(f->get_string("tokenizer.ggml.model").value() == "llama");
    CHECK(f->get_string_array("tokenizer.ggml.tokens").value().size() == 600);
    CHECK(f->tensor("blk.1.attn_q.weight")->type == GgmlType::kQ4_K);
    CHECK(f->tensor("blk.1.attn_k.weight")->ne[1] == 64);
    CHECK(f->tensor("blk.0.ffn_down.weight")->type == GgmlType::kQ8_0);
    CHECK(f->tensor("blk.0.ffn_gate.weight")->ne[1] == 96);
    CHECK(f->tensor("output.weight") != nullptr);
    CHECK(f->tensor("blk.0.attn_q.bias") == nullptr);
    CHECK(f->tensors().size() == 1 + 2 * 9 + 2);
    // Norm weights near 1, matrices with std ~ 1/sqrt(n_in).
    const TensorInfo* norm = f->tensor("blk.0.attn_norm.weight");
    REQUIRE(norm->type == GgmlType::kF32);
    std::vector<float> row(256);
    REQUIRE(dequantize_row(norm->type, norm->data, row.data(), 256).ok());
    for (float x : row) CHECK((x >= 0.9f && x <= 1.1f));
    const TensorInfo* q = f->tensor("blk.0.attn_q.weight");
    double ss = 0;
    for (int64_t r = 0; r < q->n_rows(); ++r) {
      REQUIRE(dequantize_row(q->type, static_cast<const uint8_t*>(q->data) + r * q->row_bytes(), row.data(), 256).ok());
      for (float x : row) ss += double(x) * x;
    }
    const double std_dev = std::sqrt(ss / static_cast<double>(q->n_elements()));
    CHECK(std_dev == doctest::Approx(1.0 / 16).epsilon(0.1));
  }
  SUBCASE("qwen2, tied, biases, q8_0") {
    ModelShape s;
    s.arch = "qwen2";
    s.n_embd = 64;
    s.n_vocab = 400;
    s.tied_embeddings = true;
    s.rope_base = 1000000.0f;
    REQUIRE(make_random_model(s, GgmlType::kQ8_0, 3, dir.file("q.gguf")).ok());
    auto f = GgufFile::open(dir.file("q.gguf"));
    REQUIRE(f.ok());
    CHECK(f->architecture() == "qwen2");
    CHECK(rope_style_for(f->architecture()) == RopeStyle::kNeox);
    CHECK(f->get_f32("qwen2.rope.freq_base").value() == 1000000.0f);
    CHECK(f->tensor("output.weight") == nullptr);
    CHECK(f->tensor("blk.1.attn_k.bias")->ne[0] == 32);
    CHECK(f->get_string("tokenizer.ggml.model").value() == "gpt2");
    CHECK(f->get_string("tokenizer.ggml.pre").value() == "qwen2");
    CHECK(f->get_string_array("tokenizer.ggml.tokens").value().size() == 400);
  }
  SUBCASE("bad shapes are errors") {
    ModelShape s;
    s.n_head = 3;
    CHECK_FALSE(make_random_model(s, GgmlType::kF16, 1, dir.file("x.gguf")).ok());
    ModelShape t;
    t.arch = "gpt9";
    CHECK_FALSE(make_random_model(t, GgmlType::kF16, 1, dir.file("x.gguf")).ok());
    ModelShape u;
    u.n_vocab = 100;
    CHECK_FALSE(make_random_model(u, GgmlType::kF16, 1, dir.file("x.gguf")).ok());
  }
}
