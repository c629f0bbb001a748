#pragma once
// Token usage as each dialect writes it, converted to and from core's `Usage`.
//
// The conventions differ: Anthropic's `input_tokens` excludes cache reads and cache
// writes (they are separate counters), OpenAI's `prompt_tokens` includes cached
// tokens. core's `Usage::input_tokens` follows OpenAI (every prompt token), so:
//   Usage.input_tokens = anthropic input + cache_read + cache_creation
//   anthropic input    = Usage.input_tokens - cached - cache writes
#include <simdjson.h>

#include <cstdint>

#include "core/json.h"
#include "core/usage.h"

namespace frugal {

// Anthropic's counters as reported, before folding into `Usage`. Streams report them
// in two places (`message_start.message.usage`, then `message_delta.usage`, which is
// cumulative); `merge` lets later reports override earlier ones field by field.
struct AnthropicUsage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cache_read_input_tokens = 0;
  int64_t cache_creation_input_tokens = 0;
  int64_t ephemeral_5m_input_tokens = 0;
  int64_t ephemeral_1h_input_tokens = 0;
  bool has_ttl_breakdown = false;  // a `cache_creation` object was seen
  bool reported = false;

  // Overrides every counter present in `usage` (an Anthropic `usage` object);
  // absent or null counters keep their value. Non-objects are ignored.
  void merge(simdjson::dom::element usage);
  Usage to_usage() const;
};

// usage_from_openai lives in core/usage.h.

// Writes `{"prompt_tokens":..,"completion_tokens":..,"total_tokens":..,
// "prompt_tokens_details":{"cached_tokens":..},"completion_tokens_details":{"reasoning_tokens":..}}`.
void write_openai_usage(JsonWriter& w, const Usage& u);

// Writes `{"input_tokens":..,"cache_creation_input_tokens":..,"cache_read_input_tokens":..,
// "cache_creation":{"ephemeral_5m_input_tokens":..,"ephemeral_1h_input_tokens":..},"output_tokens":..}`.
void write_anthropic_usage(JsonWriter& w, const Usage& u);

}  // namespace frugal
