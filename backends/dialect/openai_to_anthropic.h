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
//   response_format json_schema → a tool named after the schema (json_schema.name, its
//   schema as input_schema) forced by tool_choice {type: tool}; json_object → the tool
//   kJsonObjectToolName with a permissive object schema. With tools of the client's own,
//   tool_choice is `any` (the model calls one of them or answers), or the client's named
//   tool. The answer tool's input comes back as the message content (its name is
//   response_format_tool(req); see anthropic_to_openai_response).
// Parameters Anthropic cannot honour (n > 1, logprobs, penalties, logit_bias, audio,
// ...) are a 400 naming the parameter.
Result<std::string> openai_to_anthropic_request(const ChatRequest& req,
                                                std::string_view upstream_model,
                                                const AnthropicDefaults& defaults);

// The tool a json_object response_format is answered through.
inline constexpr std::string_view kJsonObjectToolName = "json_object";

// The name of the tool that carries the answer of a request with a JSON response_format
// ("" for none); an error for a response_format Anthropic cannot be asked for.
Result<std::string> response_format_tool(const ChatRequest& req);

}  // namespace frugal
