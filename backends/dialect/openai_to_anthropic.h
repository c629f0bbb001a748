#pragma once
// OpenAI chat-completions requests → Anthropic Messages API bodies, for OpenAI clients
// routed to an Anthropic upstream.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/chat.h"
#include "core/error.h"

namespace frugal {

struct AnthropicDefaults {
  // Anthropic requires max_tokens; OpenAI clients usually omit it. Routes should set
  // this to the model's output limit so "no limit" keeps meaning "as much as allowed".
  int64_t max_tokens = 4096;
};

// Translates `req` into an Anthropic /v1/messages body for `upstream_model`.
// `req.root` must still be valid (the parser that produced `req` alive and unused):
// fields ChatRequest does not model (cache_control on parts and messages,
// parallel_tool_calls, top_k, unknown keys) are read from it.
//
// Mapping (docs/dialects.md has the full table):
//   system/developer messages → `system` text blocks (hoisted, in order)
//   consecutive messages of one role → one turn; tool messages → tool_result blocks
//   in a user turn; assistant tool_calls → tool_use blocks (arguments parsed; invalid
//   JSON is a 400); image_url data: URIs → base64 image blocks, http(s) → url source
//   stop → stop_sequences; tools/tool_choice ("required" → any, named → tool)
// Parameters Anthropic cannot honour (n > 1, logprobs, penalties, response_format
// json_object/json_schema, logit_bias, audio, ...) are a 400 naming the parameter.
Result<std::string> openai_to_anthropic_request(const ChatRequest& req,
                                                std::string_view upstream_model,
                                                const AnthropicDefaults& defaults);

}  // namespace frugal
