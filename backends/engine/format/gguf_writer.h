#pragma once
// GGUF v3 writer and a generator of random-weight llama / qwen2 models.
//
// The writer collects metadata and tensor descriptions, then streams the file out in
// one pass: tensor data is either given as bytes or produced row by row by a callback
// at write time (so multi-GB models are written in constant memory). f32 rows are
// quantised with the reference quantize_row.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "backends/engine/format/ggml_types.h"
#include "backends/engine/format/gguf.h"
#include "core/error.h"

namespace frugal::engine {

class GgufWriter {
 public:
  // Fills `row` (ne[0] floats) with the values of row `index` (0..n_rows-1); called
  // once per row, in order, while the file is written.
  using RowFn = std::function<void(int64_t index, float* row)>;

  explicit GgufWriter(uint32_t alignment = kGgufDefaultAlignment);

  // Adds or replaces a metadata key; order of first insertion is kept. A non-default
  // alignment is written as general.alignment automatically.
  void set(const std::string& key, GgufValue value);
  void set_u32(const std::string& key, uint32_t v) { set(key, GgufValue::make_u32(v)); }
  void set_i32(const std::string& key, int32_t v) { set(key, GgufValue::make_i32(v)); }
  void set_f32(const std::string& key, float v) { set(key, GgufValue::make_f32(v)); }
  void set_bool(const std::string& key, bool v) { set(key, GgufValue::make_bool(v)); }
  void set_string(const std::string& key, std::string v) { set(key, GgufValue::make_string(std::move(v))); }
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);

  // ne in ggml order (ne[0] = row length), 1..4 dims. Errors on duplicate names, bad
  // dims, a row length that is not a multiple of the type's block, or a size mismatch.
  Result<void> add_tensor(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                          std::span<const float> values);
  Result<void> add_tensor_bytes(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                                std::vector<uint8_t> bytes);
  Result<void> add_tensor_rows(const std::string& name, std::vector<int64_t> ne, GgmlType type, RowFn rows);

  // Writes the whole file (via path + ".tmp" and a rename, so readers never see half).
  Result<void> write(const std::string& path) const;
  // The same bytes in memory (for tests and fuzz corpora).
  Result<std::vector<uint8_t>> serialize() const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType type;
    std::vector<uint8_t> bytes;  // when given up front
    RowFn rows;                  // otherwise
    size_t n_bytes = 0;
  };
  Result<void> check_new_tensor(const std::string& name, const std::vector<int64_t>& ne, GgmlType type) const;
  template <class Sink>
  Result<void> emit(Sink& sink) const;

  uint32_t alignment_;
  std::vector<GgufKv> kvs_;
  std::vector<Tensor> tensors_;
};

// Which synthetic tokenizer make_random_model / add_synthetic_tokenizer writes.
enum class TokenizerKind {
  kDefault,    // by architecture: llama -> kSpm, qwen2 -> kBpeQwen2
  kSpm,        // tokenizer.ggml.model = llama: <unk> <s> </s>, 256 <0xNN> byte tokens, scored pieces
  kBpeLlama3,  // gpt2 byte-level BPE, pre = llama-bpe, llama-3 special tokens
  kBpeQwen2,   // gpt2 byte-level BPE, pre = qwen2, ChatML special tokens
};

// Writes tokenizer.* metadata for a synthetic vocabulary of exactly n_vocab tokens
// (English word pieces plus filler), including tokenizer.chat_template. kDefault is
// treated as kSpm. Errors if n_vocab is too small to hold the base tokens (bytes and
// specials; about 300).
Result<void> add_synthetic_tokenizer(GgufWriter& w, TokenizerKind kind, int n_vocab);

struct ModelShape {
  std::string arch = "llama";  // "llama" or "qwen2"
  int n_layer = 2;
  int n_embd = 64;             // multiple of n_head
  int n_head = 4;
  int n_head_kv = 2;           // divides n_head (GQA)
  int n_ff = 128;
  int n_vocab = 512;
  int context = 2048;
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool tied_embeddings = false;  // no output.weight; the head reuses token_embd.weight
  int qkv_bias = -1;             // -1: by arch (qwen2 yes, llama no); 0 / 1 force it
  TokenizerKind tokenizer = TokenizerKind::kDefault;
  std::string name = "frugal-random";
};

// Writes a complete, loadable random-weight model. 2-D weights (and token_embd) use
// `type`; a matrix whose row length is not a multiple of the type's block falls back to
// q8_0, or f16 if that does not fit either. Norm weights, biases stay f32. Weights are
// uniform with std 1/sqrt(row length) so activations keep unit scale; norm weights are
// 1 +- 0.1. The same (shape, type, seed) always gives the same bytes. Rope pairing is
// implied by the architecture (see rope_style in gguf.h).
Result<void> make_random_model(const ModelShape& shape, GgmlType type, uint64_t seed, const std::string& path);

}  // namespace frugal::engine
