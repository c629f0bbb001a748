#pragma once
// Output shaping ("generate less"): a route's max_tokens default and cap, added stop
// sequences, a concise-answer instruction appended to the system prompt and a default
// reasoning_effort (config::OutputShapingSpec), applied once to the client's request after
// routing and before the cache lookup, so that every tier, the cache key and the
// replayed answer agree on one shaped request.
//
// Both forms of a request are rewritten: the OpenAI body (what OpenAI-compatible
// providers and the engine get, re-parsed into the ChatRequest) and, for an Anthropic
// client, its native Messages body (what Anthropic providers get): max_tokens,
// stop_sequences and `system` there. reasoning_effort goes into the OpenAI form only;
// an Anthropic provider is not sent a route's default (ChatRequest::route_reasoning_effort).
#include <simdjson.h>

#include <string>

#include "config/policy_config.h"
#include "core/chat.h"
#include "core/error.h"
#include "router/ledger_record.h"

namespace frugal::router {

// The shaped bodies and the parser of the re-parsed request: must outlive the dispatch.
struct ShapedBodies {
  std::string openai_body;
  std::string anthropic_body;
  simdjson::dom::parser parser;
};

// Shapes `req` in place (its bodies then point into `keep`). Returns what was applied;
// a spec with nothing to do, or a request it does not change, leaves `req` untouched.
// Errors (a body that no longer parses) are kInternal: the request is refused, not sent
// unshaped.
Result<ShapingRecord> shape_request(ChatRequest& req, const config::OutputShapingSpec& spec, ShapedBodies& keep);

// The OpenAI body of a parsed request (its `root`) with the spec applied. `record` says
// what changed.
Result<std::string> shape_openai_body(const ChatRequest& req, const config::OutputShapingSpec& spec,
                                      ShapingRecord& record);
// The Anthropic Messages body with max_tokens capped, stop_sequences added and the
// concise instruction appended to `system`.
Result<std::string> shape_anthropic_body(std::string_view body, const config::OutputShapingSpec& spec,
                                         ShapingRecord& record);

}  // namespace frugal::router
