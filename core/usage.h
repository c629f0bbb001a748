#pragma once
#include <cstdint>

namespace frugal {

// Token usage by class, as providers report it. `input_tokens` counts every prompt
// token including cached and cache-write ones (OpenAI's prompt_tokens convention);
// the cost layer subtracts the sub-classes when pricing.
struct Usage {
  int64_t input_tokens = 0;
  int64_t cached_input_tokens = 0;      // read from a provider prompt cache
  int64_t cache_write_5m_tokens = 0;    // Anthropic cache_creation (5 min TTL)
  int64_t cache_write_1h_tokens = 0;    // Anthropic cache_creation (1 h TTL)
  int64_t output_tokens = 0;
  int64_t reasoning_tokens = 0;         // part of output_tokens
  bool reported = false;                // the provider sent a usage block

  int64_t total_tokens() const { return input_tokens + output_tokens; }
};

}  // namespace frugal

#include <simdjson.h>

#include <string_view>

namespace frugal {

// Reads an OpenAI `usage` object (prompt_tokens, completion_tokens,
// prompt_tokens_details.cached_tokens, completion_tokens_details.reasoning_tokens).
Usage usage_from_openai(simdjson::dom::element usage);

// The top-level `usage` of an OpenAI chat completion body, read without building a
// document of the rest (On-Demand), which is not validated: not `reported` when the
// body is no JSON object or its usage is absent or not an object.
Usage usage_of_openai_body(std::string_view body);

}  // namespace frugal
