#pragma once
// A deliberately naive fp32 forward pass, independent of the engine's compute layer: it
// reads hyper-parameters from GGUF metadata itself, dequantises every weight with the
// format layer's reference dequantize_row, and recomputes the whole sequence from
// position 0 with plain loops (double accumulators). Tests only.
#include <cstdint>
#include <string>
#include <vector>

#include "backends/engine/format/gguf.h"

namespace frugal::engine::testing {

class ReferenceModel {
 public:
  // Aborts the test (returns an error string) on anything unexpected.
  static std::string load(const GgufFile& f, ReferenceModel* out);
  // Logits (tokens.size(), n_vocab), row i for the prefix tokens[0..i].
  std::vector<float> forward(const std::vector<int32_t>& tokens) const;
  int n_vocab() const { return n_vocab_; }

 private:
  struct Layer {
    std::vector<float> attn_norm, wq, wk, wv, wo, bq, bk, bv, ffn_norm, w_gate, w_up, w_down;
  };
  int n_vocab_ = 0, n_embd_ = 0, n_head_ = 0, n_head_kv_ = 0, n_ff_ = 0, head_dim_ = 0;
  float eps_ = 1e-5f, rope_base_ = 10000.0f;
  bool neox_ = false;
  std::vector<float> embd_, out_norm_, output_;
  std::vector<Layer> layers_;
};

}  // namespace frugal::engine::testing
