#pragma once
// Non-streaming response bodies: Anthropic `message` <-> OpenAI `chat.completion`.
//
// Both take the upstream's 2xx body as text and return the client's body as text, or
// kUpstream when the upstream body is not the shape its dialect promises. Usage is
// returned alongside so the ledger never re-parses the body.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/usage.h"

namespace frugal {

struct TranslatedResponse {
  std::string body;
  Usage usage;              // as reported by the upstream, in core's convention
  std::string stop_reason;  // the *client* dialect's value ("stop", "end_turn", ...)
};

// Anthropic message → OpenAI chat.completion. `model` is what the client sees (usually
// the model it asked for); `created_unix_s` the completion's timestamp.
//   text blocks → message.content (concatenated; null when only tool calls)
//   tool_use → message.tool_calls (input serialised as the arguments string)
//   thinking → message.reasoning_content (the de-facto field of vLLM/DeepSeek/OpenRouter)
//   stop_reason end_turn|stop_sequence|pause_turn → stop, max_tokens → length,
//   tool_use → tool_calls, refusal → content_filter
//   usage: prompt_tokens = input + cache_read + cache_creation,
//          prompt_tokens_details.cached_tokens = cache_read
//   answer_tool (response_format_tool of the request, "" for none): a tool_use of that
//   name is the answer to a JSON response_format: its input (compact JSON) becomes
//   message.content, and finish_reason is stop unless other tools were called too
Result<TranslatedResponse> anthropic_to_openai_response(std::string_view anthropic_json,
                                                        std::string_view model,
                                                        int64_t created_unix_s,
                                                        std::string_view answer_tool = {});

// OpenAI chat.completion (choice 0) → Anthropic message.
//   content → text block; reasoning_content → thinking block (first); tool_calls →
//   tool_use blocks (arguments parsed; arguments that are not a JSON object are a
//   kUpstream error, since Anthropic clients expect `input` to be an object);
//   refusal → text block with stop_reason "refusal"
//   finish_reason stop → end_turn, length → max_tokens, tool_calls|function_call →
//   tool_use, content_filter → refusal
//   usage: input_tokens = prompt − cached, cache_read_input_tokens = cached
Result<TranslatedResponse> openai_to_anthropic_response(std::string_view openai_json,
                                                        std::string_view model);

// Stop-reason vocabularies, shared with the stream translators.
const char* openai_finish_reason_for(std::string_view anthropic_stop_reason);
const char* anthropic_stop_reason_for(std::string_view openai_finish_reason);

}  // namespace frugal
