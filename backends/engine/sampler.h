#pragma once
// Token sampling, logprobs and confidence signals, all per request and engine-thread
// only (no locking). Plain structs in, plain structs out: the gateway maps them onto
// OpenAI's `logprobs` shape.
//
// Pipeline for one step (as vLLM / llama.cpp do, in this order):
//   logits -> repetition penalty (prompt + output tokens, HF-style: divide positive
//   logits, multiply negative) -> frequency/presence penalties (output tokens, OpenAI
//   semantics: logit -= f * count + p * [count > 0]) -> temperature (0 => greedy argmax)
//   -> top-k -> top-p -> min-p (relative to the top probability) -> renormalise -> draw.
// Reported logprobs are those of the raw model distribution (log-softmax of the logits
// before penalties, temperature or truncation), like OpenAI's and vLLM's default.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace frugal::engine {

struct SamplingParams {
  float temperature = 1.0f;  // <= 0: greedy
  int32_t top_k = 0;         // <= 0: off
  float top_p = 1.0f;        // >= 1: off
  float min_p = 0.0f;        // <= 0: off
  float repetition_penalty = 1.0f;  // 1: off
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
};

// xoshiro256** seeded through splitmix64: reproducible across platforms and libstdc++
// versions (std::*_distribution is not).
class Rng {
 public:
  explicit Rng(uint64_t seed = 0);
  uint64_t next();
  double uniform();  // [0, 1)

 private:
  uint64_t s_[4];
};

// A constraint on the next token (constrained decoding: see grammar.h).
class TokenFilter {
 public:
  virtual ~TokenFilter() = default;
  // Whether `token` may come next (one token: cheap).
  virtual bool allows(int32_t token) = 0;
  // Sets the logit of every token that may not come next to -infinity.
  virtual void mask(std::span<float> logits) = 0;
};

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t token = -1;
  float logprob = 0.0f;            // of the chosen token under the raw distribution
  std::vector<TokenLogprob> top;   // the top_logprobs most likely tokens, best first
  float margin = 0.0f;             // top-1 minus top-2 raw logprob (>= 0)
};

// A processed distribution: the tokens that survived truncation and their
// renormalised probabilities (sum 1). Greedy is one token with probability 1.
struct Distribution {
  std::vector<int32_t> tokens;
  std::vector<float> probs;
  float prob_of(int32_t token) const;  // 0 if truncated away (linear scan)
};

class Sampler {
 public:
  // top_logprobs is clamped to [0, 20]. prompt feeds the repetition penalty.
  Sampler(const SamplingParams& params, uint64_t seed, int top_logprobs,
          std::span<const int32_t> prompt);

  // Picks the next token from logits (n_vocab,) and records it in the history.
  SampledToken sample(std::span<const float> logits);
  // The same among the tokens `filter` allows: drawn from the distribution restricted to
  // them (renormalised). The token the unconstrained pipeline picks is kept when the
  // filter allows it, which is exact (greedy: the best allowed token; sampling: a
  // rejected draw is redrawn from the masked distribution, so each allowed token comes
  // out with probability p / P(allowed)); only a rejected pick pays for a full mask.
  // Logprobs stay those of the raw distribution. Nothing allowed: token -1, no history.
  SampledToken sample(std::span<const float> logits, TokenFilter& filter);
  // The processed distribution for logits given the current history (for speculative
  // decoding's rejection sampler), without drawing or recording anything.
  Distribution distribution(std::span<const float> logits) const;
  // Draws from a distribution with this sampler's RNG.
  int32_t draw(const Distribution& dist);
  // Raw logprob of token + top alternatives for logits, as sample() reports them.
  SampledToken describe(std::span<const float> logits, int32_t token) const;
  // Records a token chosen elsewhere (speculative acceptance) in the penalty history.
  void accept(int32_t token);

  bool greedy() const { return params_.temperature <= 0.0f; }
  const SamplingParams& params() const { return params_; }
  Rng& rng() { return rng_; }

 private:
  void penalize(std::vector<float>& logits) const;
  bool plain_greedy() const;
  int32_t pick(std::span<const float> logits);

  SamplingParams params_;
  Rng rng_;
  int top_logprobs_;
  std::unordered_map<int32_t, int32_t> prompt_counts_;
  std::unordered_map<int32_t, int32_t> output_counts_;
};

// Rejection step of speculative sampling for one drafted token x ~ q: accept with
// probability min(1, p(x)/q(x)); on rejection resample from norm(max(0, p - q)).
// Returns {token, accepted}. The output is distributed exactly as p.
struct SpecDecision {
  int32_t token = -1;
  bool accepted = false;
};
SpecDecision speculative_accept(const Distribution& p, const Distribution& q, int32_t drafted, Rng& rng);

// Confidence signals over the generated tokens' raw logprobs.
struct Confidence {
  float mean_logprob = 0.0f;
  float min_logprob = 0.0f;
  float p10_logprob = 0.0f;   // 10th percentile (nearest rank)
  float mean_margin = 0.0f;   // mean top-1/top-2 logprob margin
  float min_margin = 0.0f;
};
class ConfidenceAccumulator {
 public:
  void add(float logprob, float margin);
  Confidence result() const;
  size_t count() const { return logprobs_.size(); }

 private:
  std::vector<float> logprobs_;
  double margin_sum_ = 0;
  float min_margin_ = 0;
};

// Stop-sequence matching on detokenised text, streaming-safe: text that might still be
// the start of a stop string (or an incomplete UTF-8 sequence) is held back.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Appends a piece; returns the text now safe to emit. After a match, stopped() is
  // true and the text up to (not including) the stop string has been returned.
  std::string feed(std::string_view piece);
  // Remaining held-back text at the end of the stream (when no stop matched).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace frugal::engine
