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

// One tool call as OpenAI renders it (`arguments` is JSON text).
struct ToolCallOut {
  std::string id;
  std::string name;
  std::string arguments;
};

// Reads the output of a tool-call grammar (json_schema_grammar.h: tool_call_nfa) as it
// streams: `{"name":"<tool>","arguments":<json>}` becomes a call's name and argument
// text; with allow_text (tool_choice auto) output whose first non-whitespace byte is not
// '{' is plain text. Bytes are held back only while undecided (leading whitespace, the
// call's name) and the last character of a call (its closing brace).
class ToolCallSplitter {
 public:
  explicit ToolCallSplitter(bool allow_text) : allow_text_(allow_text) {}
  struct Delta {
    std::string text;          // plain text
    bool call_started = false; // the call's name became known now
    std::string name;          // when call_started
    std::string arguments;     // more argument text
  };
  Delta feed(std::string_view bytes);
  // The rest at the end. `complete`: the output ended as the grammar allows (not cut by
  // max_tokens), so a call's closing brace is dropped.
  Delta finish(bool complete);
  bool is_call() const { return mode_ == Mode::kArguments; }

 private:
  enum class Mode { kUndecided, kText, kName, kArguments };
  void step(Delta& d);

  bool allow_text_;
  Mode mode_ = Mode::kUndecided;
  std::string pending_;
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
  // A tool call's first delta (index 0: one call per answer) and its argument text.
  std::string tool_call_start_event(std::string_view id, std::string_view name) const;
  std::string tool_call_arguments_event(std::string_view arguments) const;
  std::string usage_event(const GenerateUsage& usage, const Confidence& confidence) const;

  // Non-streaming body; with a tool call, `content` is null unless text came before it.
  std::string completion_body(std::string_view content, std::span<const LogprobRecord> logprobs,
                              bool with_logprobs, std::string_view finish_reason, const GenerateUsage& usage,
                              const Confidence& confidence, const ToolCallOut* tool_call = nullptr) const;

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
