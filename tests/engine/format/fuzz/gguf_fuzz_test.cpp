// Runs the GGUF fuzz target over the committed corpus (fuzz/corpus/), every truncation
// of a small valid model, and random byte flips of it. Passing means: no crash, no
// sanitizer report (in the asan preset), and the valid file still parses.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "backends/engine/format/gguf_writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

using namespace frugal::engine;

namespace {

// A small but complete model: SPM vocab, one tensor of each reference type.
std::vector<uint8_t> small_model() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 1);
  w.set("nested", GgufValue::make_array(GgufValueType::kArray,
                                        {GgufValue::make_array(GgufValueType::kString, {GgufValue::make_string("x")})}));
  REQUIRE(add_synthetic_tokenizer(w, TokenizerKind::kSpm, 360).ok());
  const std::vector<float> x(256, 0.5f);
  for (GgmlType t : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
                     GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    REQUIRE(w.add_tensor(std::string("t.") + type_name(t), {256}, t, x).ok());
  }
  auto bytes = w.serialize();
  REQUIRE(bytes.ok());
  return std::move(bytes).value();
}

// A few-token SPM vocabulary and one small tensor per type: cheap to truncate at
// every byte.
std::vector<uint8_t> tiny_model() {
  GgufWriter w;
  w.set_string("general.architecture", "qwen2");
  w.set("nested", GgufValue::make_array(GgufValueType::kArray,
                                        {GgufValue::make_array(GgufValueType::kInt32, {GgufValue::make_i32(3)})}));
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens",
                     {"<unk>", "<s>", "</s>", "<0x0A>", "<0xC3>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab"});
  w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0, 0, 0, -1, -2, -3, -4, -5});
  w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 6, 6, 1, 1, 1, 1, 1});
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  const std::vector<float> x(256, 0.5f);
  for (GgmlType t : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
                     GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    const int64_t n = block_size(t) == 1 ? 32 : 256;
    REQUIRE(w.add_tensor(std::string("t.") + type_name(t), {n}, t, std::span<const float>(x.data(), static_cast<size_t>(n))).ok());
  }
  auto bytes = w.serialize();
  REQUIRE(bytes.ok());
  return std::move(bytes).value();
}

std::vector<uint8_t> small_bpe_model() {
  GgufWriter w;
  REQUIRE(add_synthetic_tokenizer(w, TokenizerKind::kBpeQwen2, 300).ok());
  auto bytes = w.serialize();
  REQUIRE(bytes.ok());
  return std::move(bytes).value();
}

void run(const std::vector<uint8_t>& bytes) { LLVMFuzzerTestOneInput(bytes.data(), bytes.size()); }

}  // namespace

TEST_CASE("gguf fuzz: committed corpus") {
  const std::filesystem::path dir = FRUGAL_FUZZ_CORPUS_DIR;
  REQUIRE(std::filesystem::is_directory(dir));
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    run(bytes);
    ++files;
    const std::string name = entry.path().filename().string();
    auto f = GgufFile::parse_bytes(bytes.data(), bytes.size(), name);
    CAPTURE(name);
    if (name.rfind("valid-", 0) == 0) {
      CHECK(f.ok());
    } else {
      REQUIRE_FALSE(f.ok());
      const std::string& msg = f.error().message;
      CAPTURE(msg);
      if (name == "unknown-type.gguf") CHECK(msg.find("tensor 't': unknown tensor type id 99") != std::string::npos);
      if (name == "misaligned-offset.gguf") CHECK(msg.find("not aligned") != std::string::npos);
      if (name == "huge-counts.gguf") CHECK(msg.find("exceeds what the file can hold") != std::string::npos);
    }
  }
  CHECK(files >= 8);
}

TEST_CASE("gguf fuzz: every truncation of a small valid file is rejected cleanly") {
  for (const auto& model : {tiny_model(), small_bpe_model()}) {
    REQUIRE(GgufFile::parse_bytes(model.data(), model.size()).ok());
    size_t accepted = 0;
    for (size_t n = 0; n < model.size(); ++n) {
      // A prefix may only parse if every tensor still lies inside it; those go on
      // through the rest of the fuzz target (tokenizer, dequantisers).
      if (GgufFile::parse_bytes(model.data(), n).ok()) {
        ++accepted;
        LLVMFuzzerTestOneInput(model.data(), n);
      }
    }
    // Trailing alignment padding after the last tensor is the only optional part.
    CHECK(accepted <= 32);
  }
}

TEST_CASE("gguf fuzz: random byte flips never crash") {
  std::mt19937 rng(1234);
  for (const auto& model : {tiny_model(), small_model(), small_bpe_model()}) {
    for (int k = 0; k < 1500; ++k) {
      std::vector<uint8_t> m = model;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int j = 0; j < flips; ++j) {
        const size_t pos = rng() % m.size();
        // Favour the header and metadata (the first KiB), where flips reach the parser.
        const size_t at = (rng() % 2 == 0) ? pos % std::min<size_t>(m.size(), 1024) : pos;
        m[at] = (rng() % 3 == 0) ? static_cast<uint8_t>(0xFF) : static_cast<uint8_t>(m[at] ^ (1u << (rng() % 8)));
      }
      run(m);
    }
  }
}

// Not a test: regenerates the committed corpus (not registered with CTest). Run
//   FRUGAL_WRITE_FUZZ_CORPUS=1 engine_format_fuzz_test -tc="tool: write fuzz corpus"
TEST_CASE("tool: write fuzz corpus") {
  if (std::getenv("FRUGAL_WRITE_FUZZ_CORPUS") == nullptr) return;
  const std::filesystem::path dir = FRUGAL_FUZZ_CORPUS_DIR;
  std::filesystem::create_directories(dir);
  const auto save = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    std::ofstream out(dir / name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  };
  const auto model = small_model();
  save("valid-spm.gguf", model);
  save("valid-bpe.gguf", small_bpe_model());
  save("valid-tiny.gguf", tiny_model());
  save("truncated-header.gguf", {model.begin(), model.begin() + 20});
  save("truncated-metadata.gguf", {model.begin(), model.begin() + static_cast<long>(model.size() / 3)});
  auto huge = model;
  for (int i = 8; i < 24; ++i) huge[static_cast<size_t>(i)] = 0xFF;  // tensor and kv counts
  save("huge-counts.gguf", huge);
  GgufWriter w;
  REQUIRE(w.add_tensor("t", {32}, GgmlType::kQ8_0, std::vector<float>(32, 1.0f)).ok());
  auto one = w.serialize().value();
  // The tensor's type id sits 12 bytes before the end of its info (type u32, offset u64).
  auto bad_type = one;
  const size_t info_end = 24 + 8 + 1 + 4 + 8 + 4 + 8;
  bad_type[info_end - 12] = 99;
  save("unknown-type.gguf", bad_type);
  auto bad_offset = one;
  bad_offset[info_end - 8] = 1;  // offset 1: misaligned
  save("misaligned-offset.gguf", bad_offset);
}
