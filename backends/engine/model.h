#pragma once
// A loaded decoder model: hyper-parameters from GGUF metadata and views of the weight
// tensors inside the mapped file (no copy; small f32 vectors such as norms and biases are
// converted once at load). Supported: architectures `llama` and `qwen2` with weight types
// F32, F16, BF16, Q4_0, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K.
//
// Immutable after load and shared (read-only) by every forward pass that uses it.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/engine/format/gguf.h"
#include "core/error.h"

namespace frugal::engine {

enum class Arch { kLlama, kQwen2 };

// How RoPE pairs the dimensions of a head: kNormal rotates (2i, 2i+1) (llama, whose
// GGUF q/k weights are permuted for it); kNeox rotates (i, i + head_dim/2) (qwen2).
enum class RopePairing { kNormal, kNeox };

// How a sequence's final hidden states become one embedding: GGUF `<arch>.pooling_type`
// 1 mean, 2 cls (the first token), 3 last. A decoder without the key (or with 0, none)
// pools the last token: under causal attention only it has seen the whole input (the
// choice of decoder embedding models such as Qwen3-Embedding and e5-mistral).
enum class Pooling { kMean, kCls, kLast };
const char* pooling_name(Pooling p);  // "mean", "cls", "last"

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string arch_name;
  int32_t n_vocab = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t n_ff = 0;
  int32_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  int32_t rope_dim = 0;  // rotated dims per head (== head_dim for these architectures)
  RopePairing rope = RopePairing::kNormal;
  bool tied_embeddings = false;
  bool qkv_bias = false;
  Pooling pooling = Pooling::kLast;

  int32_t q_dim() const { return n_head * head_dim; }
  int32_t kv_dim() const { return n_head_kv * head_dim; }
};

// A 2-D weight W (n_out, n_in): n_out rows of row_bytes, each n_in elements of `type`.
struct Weight {
  uint32_t type = 0;  // GGML type id
  int64_t n_in = 0;
  int64_t n_out = 0;
  size_t row_bytes = 0;
  const uint8_t* data = nullptr;
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

struct LayerWeights {
  std::vector<float> attn_norm;  // (n_embd,)
  Weight wq, wk, wv, wo;
  std::vector<float> bq, bk, bv;  // empty unless qkv_bias
  std::vector<float> ffn_norm;
  Weight w_gate, w_up, w_down;
};

class Model {
 public:
  static Result<std::shared_ptr<const Model>> load(const std::string& path);
  static Result<std::shared_ptr<const Model>> from_gguf(GgufFile file);

  const ModelConfig& config() const { return config_; }
  const Weight& token_embd() const { return token_embd_; }  // (n_vocab, n_embd)
  const Weight& output() const { return output_; }          // == token_embd when tied
  const std::vector<float>& output_norm() const { return output_norm_; }
  const LayerWeights& layer(int i) const { return layers_[i]; }
  const GgufFile& gguf() const { return *file_; }
  // Bytes of weights a decode step streams once (all layers + output head; the
  // embedding lookup reads one row). Used for the roofline.
  size_t weight_bytes_per_token() const;
  std::string describe() const;

 private:
  Model() = default;
  std::optional<GgufFile> file_;
  ModelConfig config_;
  Weight token_embd_, output_;
  std::vector<float> output_norm_;
  std::vector<LayerWeights> layers_;
  friend struct ModelLoader;
};

}  // namespace frugal::engine
