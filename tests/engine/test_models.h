#pragma once
// Tiny random-weight models for the compute-layer tests, written once per process into a
// temp dir by the format layer's make_random_model.
#include <cstdint>
#include <memory>
#include <string>

#include "backends/engine/format/ggml_types.h"
#include "backends/engine/model.h"

namespace frugal::engine::testing {

struct TinySpec {
  std::string arch = "llama";
  GgmlType type = GgmlType::kF32;
  bool tied = false;
  int n_embd = 256;  // K-quants need rows that are multiples of 256
  int n_layer = 2;
  int n_head = 4;
  int n_head_kv = 2;
  int n_ff = 512;
  int n_vocab = 384;  // the synthetic tokenizer needs >= 355
  uint64_t seed = 1;
};

// Path of the model file (generated on first use; REQUIRE-fails the test on error).
std::string tiny_model_path(const TinySpec& spec);
std::shared_ptr<const Model> tiny_model(const TinySpec& spec);

}  // namespace frugal::engine::testing
