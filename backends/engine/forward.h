#pragma once
// The forward pass behind an interface: the scheduler builds a batch of (token, position,
// sequence) entries and asks for logits; the CPU implementation lives in cpu_forward.cpp
// and a CUDA one can implement the same interface later.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backends/engine/kv_cache.h"
#include "backends/engine/model.h"
#include "core/error.h"

namespace frugal::engine {

class ThreadPool;
namespace cpu {
struct KernelSet;
}

struct BatchEntry {
  int32_t token = 0;
  int32_t pos = 0;            // position in its sequence
  KvCache::SeqId seq = 0;
  bool logits = false;        // whether this entry's logits are wanted
};

class ForwardPass {
 public:
  virtual ~ForwardPass() = default;
  // Runs the batch through the model. For every entry, K/V are written to `kv` at
  // (seq, pos) (the caller has reserved blocks for those positions) and the entry attends
  // to positions [0, pos] of its sequence: earlier entries of the same sequence in this
  // batch, and whatever the cache already holds below them. `logits` is resized to
  // (number of entries with logits=true, n_vocab), rows in batch order.
  // Errors: a token outside the vocabulary, a position without a reserved block.
  virtual Result<void> forward(std::span<const BatchEntry> batch, KvCache& kv,
                               std::vector<float>& logits) = 0;
  // The same pass without the output head: `hidden` is resized to (batch.size(), n_embd),
  // every entry's final hidden state after the output norm (what embeddings pool).
  // `logits` flags are ignored. A forward pass without it answers kUnavailable.
  virtual Result<void> hidden(std::span<const BatchEntry> /*batch*/, KvCache& /*kv*/, std::vector<float>& /*hidden*/) {
    return make_error(ErrorKind::kUnavailable, "this forward pass computes no embeddings");
  }
  virtual const Model& model() const = 0;
};

// kernels == nullptr: cpu::default_kernels(). The pool must outlive the forward pass.
std::unique_ptr<ForwardPass> make_cpu_forward(std::shared_ptr<const Model> model, ThreadPool* pool,
                                              const cpu::KernelSet* kernels = nullptr);

// The KV cache shape a model needs.
KvCacheShape kv_shape_for(const ModelConfig& config, int32_t block_size = 16);

}  // namespace frugal::engine
