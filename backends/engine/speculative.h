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
// The number of drafted tokens per step is fixed (k >= 1) or chosen by DraftLengthPolicy
// from the measured acceptance (k = 0), which also stops drafting when it cannot pay.
//
// Engine-thread only. Draft and target must share the vocabulary.
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "backends/engine/forward.h"
#include "backends/engine/kv_cache.h"
#include "backends/engine/sampler.h"
#include "core/error.h"

namespace frugal::engine {

struct SpeculativeStats {
  uint64_t target_steps = 0;    // batched verify forwards of the target (prompt prefill excluded)
  uint64_t plain_steps = 0;     // of which drafted nothing (the policy chose k = 0)
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

// Chooses how many tokens to draft per verify step from the measured acceptance, so that
// speculation is only used where it pays. Model: each drafted token is accepted with
// probability a, independently; a step with k drafts then yields
// E(k) = (1 - a^(k+1)) / (1 - a) tokens for k * draft_cost + 1 + verify_slope * k target
// decode steps of time (the verify forward of k+1 tokens costs about one decode step plus
// a little per token, since the batched matmul reads each weight once). k = 0 is plain
// decoding: 1 token per step. The policy picks the k in [0, k_max] with the most tokens
// per unit of time. The acceptance estimate is exponentially decayed over steps (each
// step's accepted count, and whether a rejection ended it); while at k = 0, every
// probe_every-th step drafts one token so the estimate can recover. Deterministic: the
// same outcomes give the same choices (sampled output stays reproducible by seed).
struct DraftPolicyConfig {
  int k_max = 8;
  double draft_cost = 0.1;      // one draft forward, in target decode steps
  double verify_slope = 0.05;   // verify cost per drafted token, in target decode steps
  double decay = 0.9;           // weight of the past per step
  int probe_every = 16;
};

class DraftLengthPolicy {
 public:
  explicit DraftLengthPolicy(DraftPolicyConfig config = {});
  // Drafts for the next step (0: decode with the target alone).
  int next_k();
  // Outcome of a step that drafted `drafted` tokens, `accepted` of them kept.
  void observe(int drafted, int accepted);
  double acceptance() const;
  // Expected tokens per unit of time (target decode steps) for k drafts; 1.0 at k = 0.
  static double expected_speedup(double acceptance, int k, double draft_cost, double verify_slope);
  const DraftPolicyConfig& config() const { return config_; }

 private:
  DraftPolicyConfig config_;
  double successes_ = 2.0, trials_ = 3.0;  // prior: acceptance 2/3, worth 3 observations
  int idle_steps_ = 0;
};

// Draft cost for DraftLengthPolicy from the models' sizes: decoding is bound by reading
// the weights, so one draft step costs about its share of the bytes a target step reads.
double draft_cost_estimate(const Model& target, const Model& draft);

class SpeculativeDecoder {
 public:
  SpeculativeDecoder(ForwardPass& target, KvCache& target_kv, ForwardPass& draft, KvCache& draft_kv);

  // Generates up to max_tokens tokens after prompt (stops early after a token for which
  // is_end returns true, which is included). k: drafted tokens per step (>= 1), or 0 to
  // let the DraftLengthPolicy choose.
  Result<std::vector<int32_t>> generate(const std::vector<int32_t>& prompt, const SamplingParams& params,
                                        uint64_t seed, int max_tokens, int k,
                                        const std::function<bool(int32_t)>& is_end = nullptr);
  const SpeculativeStats& stats() const { return stats_; }
  // The policy for k = 0 (kept across generate calls: acceptance is a property of the
  // draft/target pair). Default: DraftPolicyConfig with draft_cost_estimate's cost.
  void set_policy(const DraftPolicyConfig& config) { policy_.emplace(config); }
  const std::optional<DraftLengthPolicy>& policy() const { return policy_; }

 private:
  ForwardPass& target_;
  KvCache& target_kv_;
  ForwardPass& draft_;
  KvCache& draft_kv_;
  SpeculativeStats stats_;
  std::optional<DraftLengthPolicy> policy_;
};

}  // namespace frugal::engine
