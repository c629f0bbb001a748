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
// from the measured acceptance and costs (k = 0), which also stops drafting when it
// cannot pay. Adaptive, the draft computes nothing while it sits out (the prompt
// included): it catches up when it drafts next, and a probe after a long pause restarts
// its context from the last DraftPolicyConfig::probe_window tokens.
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
  uint64_t draft_steps = 0;     // draft forwards
  uint64_t probes = 0;          // steps that drafted one token while speculation did not pay
  uint64_t drafted = 0;
  uint64_t accepted = 0;
  uint64_t generated = 0;
  double acceptance_rate() const { return drafted ? static_cast<double>(accepted) / drafted : 0.0; }
  // Generated tokens per verify forward of the target (1.0 = no gain).
  double tokens_per_target_step() const {
    return target_steps ? static_cast<double>(generated) / target_steps : 0.0;
  }
};

// Chooses how many tokens to draft per verify step from the measured acceptance and the
// measured costs, so that speculation is only used where it pays. Model: each drafted
// token is accepted with probability a, independently; a step with k drafts then yields
// E(k) = (1 - a^(k+1)) / (1 - a) tokens for k * draft_cost + verify_cost(k) target decode
// steps of time, where verify_cost(k) is the cost of the target's forward of k+1 tokens
// relative to one token. k = 0 is plain decoding: 1 token per step. The policy picks the
// k in [0, k_max] with the most tokens per unit of time.
//
// The acceptance estimate is exponentially decayed per observed step. The costs start
// from priors (draft_cost from the models' sizes, verify_cost(k) = 1 + verify_slope * k)
// and follow the timings the caller reports (observe_target / observe_draft, moving
// averages), unless measure_costs is off (tests: deterministic choices).
//
// When no k pays, the target decodes alone and the policy probes with one drafted token
// after probe_every target-only steps; a rejected probe doubles the wait for the next, an
// accepted one halves it, and the wait returns to probe_every once speculation pays
// again. So a draft that is never right costs O(log n) probes over n steps, and one that
// is right a fraction p < 1/2 of the time still waits exponentially longer (the wait's
// log drifts up by 1 - 2p per probe). With measured costs, the wait after a probe is also
// at least its measured cost / probe_budget target steps, so probes never take more than
// about probe_budget of the time. A draft that cannot pay even at acceptance 1 (it costs
// about as much as the target) is never probed. One policy serves a target/draft pair: the engine shares it across
// requests, so a new request starts from what the previous ones measured.
struct DraftPolicyConfig {
  int k_max = 8;
  double draft_cost = 0.1;      // prior: one single-token draft forward, in target decode steps
  double verify_slope = 0.1;    // prior: verify of k+1 tokens costs 1 + verify_slope * k decode steps
  double decay = 0.9;           // weight of the past acceptance per observed step
  int probe_every = 16;         // first probe after this many target-only steps
  int probe_max = 1 << 20;      // the longest wait between probes
  // A probe whose draft lags the target by more than this many tokens restarts the
  // draft's context from the last probe_window tokens, so a probe costs a bounded amount
  // of draft work however long the draft sat out (0: always catch up in full).
  int probe_window = 32;
  // Probes may cost at most this fraction of the target-only time: after a probe whose
  // measured cost was c target steps, the next waits at least c / probe_budget steps.
  double probe_budget = 0.02;
  bool measure_costs = true;    // follow observe_target / observe_draft
  double cost_weight = 0.25;    // weight of a new timing in the moving averages
};

class DraftLengthPolicy {
 public:
  struct Choice {
    int k = 0;           // drafts for the next step (0: decode with the target alone)
    bool probe = false;  // a single-token probe while speculation does not pay
  };
  explicit DraftLengthPolicy(DraftPolicyConfig config = {});
  Choice next();
  int next_k() { return next().k; }
  // Outcome of a step that drafted `drafted` tokens, `accepted` of them kept (probe: the
  // step was a Choice with probe set).
  void observe(int drafted, int accepted, bool probe = false);
  // Timings of one sequence's forwards: the target's of `tokens` tokens (a plain step is
  // 1, a verify of k drafts k+1) and the draft's (a draft forward of m > 1 tokens, e.g.
  // catching up, counts as m/verify-curve single-token forwards).
  void observe_target(int tokens, double seconds);
  void observe_draft(int tokens, double seconds);
  // A probe's draft forwards took draft_seconds (catching up included): with the verify's
  // extra cost, it sets the least wait before the next probe (probe_budget).
  void observe_probe(double draft_seconds);
  double acceptance() const;
  double draft_cost() const;        // in target decode steps
  double verify_cost(int k) const;  // the forward of k+1 tokens, in target decode steps
  // The best k under the current estimates (0: speculation does not pay).
  int best_k() const;
  // Whether some k would pay at acceptance 1: if not, the draft is never probed.
  bool can_pay() const;
  uint64_t probes() const { return probes_; }
  int probe_interval() const { return interval_; }
  // Expected tokens per unit of time (target decode steps) for k drafts; 1.0 at k = 0.
  static double expected_speedup(double acceptance, int k, double draft_cost, double verify_slope);
  static double expected_rate(double acceptance, int k, double draft_cost, double verify_cost);
  const DraftPolicyConfig& config() const { return config_; }

 private:
  int best_k_at(double a) const;
  DraftPolicyConfig config_;
  double successes_ = 2.0, trials_ = 3.0;  // prior: acceptance 2/3, worth 3 observations
  int idle_steps_ = 0;
  int interval_ = 16;
  uint64_t probes_ = 0;
  // Moving averages of measured seconds (0: not measured yet): target forward of m
  // tokens at target_s_[m - 1], m = 1..k_max+1; a single-token draft forward.
  std::vector<double> target_s_;
  double draft_s_ = 0.0;
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
