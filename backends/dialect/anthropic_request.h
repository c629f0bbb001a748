#pragma once
// Anthropic Messages API requests (POST /v1/messages): validation, and translation
// into an OpenAI chat-completions body for OpenAI-compatible upstreams.
//
// Both functions read a simdjson DOM the caller parsed; they neither own nor keep it
// beyond the call, except `AnthropicRequestInfo::root`, which stays valid while the
// caller's parser is alive and unused. Errors are kInvalidRequest with `param` in
// Anthropic's dotted path style ("messages.2.content.0.source.data") and a message
// that starts with that path, as the real API phrases them.
#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace frugal {

// What the gateway needs to know about an Anthropic request without re-reading it:
// routing (model), limits (max_tokens), mode (stream) and a few features the router
// may match on. Everything else stays in `root` for pass-through to Anthropic.
struct AnthropicRequestInfo {
  std::string model;
  int64_t max_tokens = 0;
  bool stream = false;
  std::vector<std::string> stop_sequences;
  bool has_tools = false;
  bool has_images = false;
  bool thinking_enabled = false;
  bool uses_cache_control = false;  // some block, system part or tool carries cache_control
  std::string user_id;              // metadata.user_id
  simdjson::dom::object root;
};

// Validates the fields the Messages API requires and the shapes the translators rely
// on. Unknown top-level fields and unknown block types are accepted here: a request
// passed through to Anthropic must not be rejected for fields the gateway has not
// learnt yet. (Translation to OpenAI is where unknowns become errors.)
Result<AnthropicRequestInfo> parse_anthropic_request(simdjson::dom::element body);

// Which optional OpenAI-side features the target upstream understands. Defaults are
// what api.openai.com accepts.
struct AnthropicToOpenAiOptions {
  // vLLM, llama.cpp and SGLang accept `top_k`; OpenAI rejects it. When false a request
  // with top_k is a 400 rather than a silently different sampler.
  bool upstream_supports_top_k = false;
  // OpenRouter/LiteLLM-style upstreams honour `cache_control` on content parts; OpenAI
  // caches automatically and rejects unknown part fields. When false, cache_control
  // is dropped (it is a hint, and the upstream caches on its own).
  bool forward_cache_control = false;
  // OpenAI reasoning models reject `max_tokens` and want `max_completion_tokens`.
  bool use_max_completion_tokens = false;
  // `thinking: {type: enabled}` becomes `reasoning_effort` (budget < 4096 → low,
  // < 16384 → medium, else high) when the upstream understands it; otherwise 400.
  bool upstream_supports_reasoning_effort = false;
};

// Translates a validated-or-not Anthropic body (it is validated first) into an OpenAI
// /v1/chat/completions body for `upstream_model`. Streaming requests ask for
// `stream_options.include_usage` so the stream translator can report usage.
// Features with no OpenAI equivalent are a 400 naming the field, never dropped
// silently; docs/dialects.md lists every decision.
Result<std::string> anthropic_to_openai_request(simdjson::dom::element anthropic_body,
                                                std::string_view upstream_model,
                                                const AnthropicToOpenAiOptions& options = {});

}  // namespace frugal
