#pragma once
// Speculative decoding for one sequence: a draft model proposes k tokens one at a time,
// the target scores all of them in one batched forward (k+1 positions), and the longest
// acceptable prefix is kept plus one token from the target (the correction at the first
// rejection, or a bonus token when all k pass). Greedy: accept while the target's argmax
// equals the draft token, so the output is exactly target-only greedy decoding.
// Sampling: accept x ~ q with probability min(1, p(x)/q(x)), else resample from
// norm(max(0, p - q)) (speculative_accept), so tokens are distributed as the target's.
// Penalties (repetition/frequency/presence) use the history as of the start of each
// verify step for all k positions.
//
// Engine-thread only. Draft and target must share the vocabulary.
#include <cstdint>
#include <functional>
#include <vector>

#include "backends/engine/forward.h"
#include "backends/engine/kv_cache.h"
#include "backends/engine/sampler.h"
#include "core/error.h"

namespace frugal::engine {

struct SpeculativeStats {
  uint64_t target_steps = 0;    // batched verify forwards of the target (prompt prefill excluded)
  uint64_t draft_steps = 0;
  uint64_t drafted = 0;
  uint64_t accepted = 0;
  uint64_t generated = 0;
  double acceptance_rate() const { return drafted ? static_cast<double>(accepted) / drafted : 0.0; }
  // Generated tokens per verify forward of the target (1.0 = no gain).
  double tokens_per_target_step() const {
    return target_steps ? static_cast<double>(generated) / target_steps : 0.0;
  }
};

class SpeculativeDecoder {
 public:
  SpeculativeDecoder(ForwardPass& target, KvCache& target_kv, ForwardPass& draft, KvCache& draft_kv);

  // Generates up to max_tokens tokens after prompt (stops early after a token for which
  // is_end returns true, which is included). k: drafted tokens per step (>= 1).
  Result<std::vector<int32_t>> generate(const std::vector<int32_t>& prompt, const SamplingParams& params,
                                        uint64_t seed, int max_tokens, int k,
                                        const std::function<bool(int32_t)>& is_end = nullptr);
  const SpeculativeStats& stats() const { return stats_; }

 private:
  ForwardPass& target_;
  KvCache& target_kv_;
  ForwardPass& draft_;
  KvCache& draft_kv_;
  SpeculativeStats stats_;
};

}  // namespace frugal::engine
