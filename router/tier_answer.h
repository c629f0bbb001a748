#pragma once
// A cascade tier's answer, parsed out of the canonical bytes a backend produced (a
// chat.completion body, or the chat.completion.chunk payloads of a stream), owned, with
// the AnswerView the acceptance rules read (policies/acceptance.h). Scoring looks at
// choice 0 only.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/chat.h"
#include "core/error.h"
#include "core/usage.h"
#include "policies/acceptance.h"

namespace simdjson::dom {
class element;
}

namespace frugal::router {

struct TierAnswer {
  std::string text;  // choices[0].message.content ("" when null)
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;
  bool has_logprobs = false;             // choices[0].logprobs.content was present
  std::vector<double> token_logprobs;    // per sampled token
  std::vector<policies::TopTwo> top2;    // per token; empty unless every token had >= 2 alternatives
  // The first token's alternatives (the sampled token alone when none were returned):
  // what a verifier's P(yes) is read from.
  std::vector<std::pair<std::string, double>> first_token_top;
  Usage usage;
  // A top-level "frugal_confidence" number: the replay backend's recorded confidence
  // (backends/replay/replay_backend.h). Upstreams do not send it.
  std::optional<double> recorded_confidence;

  // Views into this answer; valid while it lives.
  policies::AnswerView view(std::string_view response_schema_json, std::optional<double> verifier_p_yes) const;
};

// kUpstream when the body is not a chat.completion with at least one choice.
Result<TierAnswer> parse_tier_answer(std::string_view completion_json);
// The same, from a body simdjson has parsed already (router/dispatch.cpp checks every
// answer it reads whole).
Result<TierAnswer> tier_answer_of(const simdjson::dom::element& root);
// Assembles stream payloads (backends/dialect/openai_stream_assembly.h) and parses them.
// `completion_json` receives the assembled body.
Result<TierAnswer> parse_tier_stream(const std::vector<std::string>& chunk_payloads, std::string* completion_json);

}  // namespace frugal::router
