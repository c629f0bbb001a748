#pragma once
// Renders engine output as the gateway's canonical bytes, OpenAI Chat Completions:
// a `chat.completion` body, or `chat.completion.chunk` SSE events followed by a
// usage-only chunk and `data: [DONE]`. Log-probabilities use OpenAI's shape
// ({token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}); `token` is the
// token's text with invalid UTF-8 replaced by U+FFFD, `bytes` its exact bytes.
// The engine's confidence signals ride along in a non-standard `x_frugal` object of
// the body and of the usage chunk (SDKs ignore unknown fields).
//
// Pure functions over plain structs; no I/O, any thread.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/engine/engine.h"
#include "core/error.h"

namespace frugal::engine {

// `s` with every invalid or truncated UTF-8 sequence replaced by U+FFFD.
std::string sanitize_utf8(std::string_view s);

// One generated token's log-probability record.
struct LogprobRecord {
  int32_t token = -1;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;
};

class OpenAiWriter {
 public:
  OpenAiWriter(std::string id, int64_t created_s, std::string model, const TokenText& text)
      : id_(std::move(id)), created_(created_s), model_(std::move(model)), text_(text) {}

  // Streaming: each returns one complete SSE event ("data: {...}\n\n").
  std::string role_event() const;
  // content: already valid UTF-8; logprobs: null when !with_logprobs.
  std::string content_event(std::string_view content, std::span<const LogprobRecord> logprobs,
                            bool with_logprobs) const;
  std::string finish_event(std::string_view finish_reason) const;
  std::string usage_event(const GenerateUsage& usage, const Confidence& confidence) const;

  // Non-streaming body.
  std::string completion_body(std::string_view content, std::span<const LogprobRecord> logprobs,
                              bool with_logprobs, std::string_view finish_reason, const GenerateUsage& usage,
                              const Confidence& confidence) const;

  // {"error":{"message","type","param","code"}}.
  static std::string error_body(const Error& e);

 private:
  void head(std::string& out, const char* object) const;
  void logprobs_json(std::string& out, std::span<const LogprobRecord> records) const;
  void usage_json(std::string& out, const GenerateUsage& usage, const Confidence& confidence) const;

  std::string id_;
  int64_t created_;
  std::string model_;
  const TokenText& text_;  // must outlive the writer
};

}  // namespace frugal::engine
