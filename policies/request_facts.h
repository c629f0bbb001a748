#pragma once
// RequestFacts: everything request-type classification may look at, filled by the
// gateway per request. All fields are views; the caller owns the bytes and keeps them
// alive for the duration of the classify() call only. Nothing here is HTTP-specific
// beyond header names.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "core/chat.h"
#include "core/dialect.h"

namespace frugal::policies {

enum class ResponseFormatType { kNone, kText, kJsonObject, kJsonSchema };

using StringPair = std::pair<std::string_view, std::string_view>;

struct RequestFacts {
  std::span<const StringPair> headers;  // names lowercase; repeated names allowed
  Dialect dialect = Dialect::kOpenAi;
  std::string_view path;                // "/v1/chat/completions"
  std::string_view model;               // as requested (alias or upstream name)
  std::string_view api_key_id;          // virtual key id, "" if none
  std::string_view team;                // team of that key, "" if none
  std::string_view system_prompt;       // all system/developer text, concatenated
  std::string_view last_user_message;   // text of the last user message
  int64_t prompt_chars = 0;
  int64_t prompt_tokens_estimate = 0;
  ResponseFormatType response_format = ResponseFormatType::kNone;
  std::span<const StringPair> metadata;  // body `metadata` object (string values)
  // Tags beyond the `x-frugal-tags` header (which the tag matcher reads itself:
  // comma-separated, whitespace-trimmed).
  std::span<const std::string_view> tags;
};

// The text-derived facts of a ChatRequest, owned. Fill RequestFacts' views from it.
struct ChatFacts {
  std::string system_prompt;
  std::string last_user_message;
  int64_t prompt_chars = 0;
  int64_t prompt_tokens_estimate = 0;  // ceil(chars / 4): a cheap, tokenizer-free estimate
  ResponseFormatType response_format = ResponseFormatType::kNone;
  std::string response_schema_json;  // response_format.json_schema.schema, "" if none
};
ChatFacts extract_chat_facts(const ChatRequest& req);

// Points `facts`' text fields at `cf` (which must outlive their use).
void apply_chat_facts(const ChatFacts& cf, RequestFacts& facts);

}  // namespace frugal::policies
