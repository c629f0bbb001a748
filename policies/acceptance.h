#pragma once
// Acceptance rules: does a cascade tier's answer stand, or do we escalate?
// A rule is a tree of validators (json_parse, json_schema, regex, non_empty,
// not_refusal, length, finish_reason) and scores (mean/min/p10 log-prob, top-1/top-2
// margin, verifier P(yes)) composed with all/any/not, compiled once from the policy.
// Evaluation is a pure function of the AnswerView; it never throws and never crashes
// on missing data: a score whose input is absent (no logprobs, no verifier result)
// rejects with a reason that says so.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/policy_config.h"
#include "core/chat.h"
#include "core/error.h"

namespace frugal::policies {

struct TopTwo {
  double first = 0;   // highest log-prob among the candidates at this position
  double second = 0;  // runner-up
};

// A tier's answer, as views into the executor's buffers (valid during evaluate()).
struct AnswerView {
  std::string_view text;
  std::span<const ToolCall> tool_calls;
  std::string_view finish_reason;          // stop, length, tool_calls, ...
  bool has_logprobs = false;               // the backend returned per-token log-probs
  std::span<const double> token_logprobs;  // log-prob of each sampled token
  std::span<const TopTwo> top2;            // per token; empty when top_logprobs < 2
  std::optional<double> verifier_p_yes;    // set by the executor when the rule has a verifier
  // A confidence the answer carries itself (a replayed outcome's recorded score); when
  // absent, the `confidence` score is computed from token_logprobs.
  std::optional<double> recorded_confidence;
  std::string_view response_schema_json;   // the request's json_schema.schema, "" if none
};

struct Decision {
  bool accepted = false;
  std::optional<double> score;  // the rule's primary score (first score in the tree)
  std::string reason;           // "mean_logprob -0.412 < -0.35", "json_schema: at /a: ..."
};

class AcceptRule {
 public:
  // `default_refusals` are used by `not_refusal: true` rules without their own list.
  static Result<AcceptRule> compile(const config::RuleSpec& spec,
                                    const std::vector<std::string>& default_refusals);

  Decision evaluate(const AnswerView& answer) const;

  bool needs_logprobs() const;      // any log-prob score in the tree
  int top_logprobs_needed() const;  // 2 when a margin score is present, else 0
  std::optional<config::VerifierSpec> verifier() const;  // the first verifier, if any

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
  const Node* primary_score_ = nullptr;  // points into root_
};

// The `confidence` score of an answer, in [0, 1]: `recorded` when set, else the
// geometric mean of the token probabilities, exp(mean log-prob); nullopt when neither
// is known (no log-probs, or no tokens). `frugal calibrate` reads recorded outcomes
// through this same function.
std::optional<double> answer_confidence(std::optional<double> recorded, std::span<const double> token_logprobs);

// Free-function spellings of the above, as the router uses them.
inline Decision evaluate_rule(const AcceptRule& r, const AnswerView& a) { return r.evaluate(a); }
inline bool rule_needs_logprobs(const AcceptRule& r) { return r.needs_logprobs(); }
inline std::optional<config::VerifierSpec> rule_verifier(const AcceptRule& r) { return r.verifier(); }

// --- helpers for the executor ------------------------------------------------

struct TokenLogprob {
  std::string_view token;
  double logprob = 0;
};

// P(yes) from the top log-probs of the verifier's first answer token: the probability
// mass on yes-tokens ("yes", "Yes", " yes", "YES", ...) over the mass on yes- plus
// no-tokens. 0 when neither appears (treated as "not yes").
double p_yes_from_top_logprobs(std::span<const TokenLogprob> top);

// Renders the verifier prompt: `{question}` -> the last user message, `{answer}` -> the
// answer text. The result is the user message sent to the verifier model, which
// should be asked for max_tokens 1, logprobs true, top_logprobs 5..20.
std::string render_verifier_prompt(const config::VerifierSpec& v, std::string_view question,
                                   std::string_view answer);

// Sets every choice's "logprobs" in an OpenAI chat completion body or stream chunk
// (data: payload, JSON only) to null, exactly what the API returns when logprobs were
// not requested. Used when the gateway asked the upstream for logprobs on the client's
// behalf. Input that is not a JSON object with "choices" is returned unchanged.
std::string strip_logprobs(std::string_view json);

}  // namespace frugal::policies
