#pragma once
// Incremental SSE translators between the Anthropic and OpenAI streaming dialects, and
// a usage tracker for Anthropic streams passed through unchanged.
//
// Contract shared by all three classes:
//  - Fed one complete upstream SSE event at a time (core/sse.h `SseParser` output) in
//    arrival order; each call appends zero or more complete downstream SSE events to
//    `out` (bytes ready to write to the client) and never buffers content, so every
//    upstream delta is forwarded as soon as it arrives.
//  - Not thread-safe; one instance per upstream stream, used from one strand.
//  - `current_usage()` is valid at any moment (e.g. when the client disconnects), in
//    core's convention (input_tokens includes cached and cache-write tokens).
//  - A stream is *completed* once its terminator has been seen (Anthropic
//    `message_stop`, OpenAI `data: [DONE]`), *failed* after an upstream error event,
//    unparseable data, or `abort()`. Events after either are ignored. `finish()` at
//    upstream EOF turns an open stream into a failure with an error event, so a cut
//    stream never looks like a clean finish to the client.
#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/sse.h"
#include "core/usage.h"
#include "backends/dialect/usage_json.h"

namespace frugal {

enum class StreamState { kOpen, kCompleted, kFailed };

// Anthropic Messages stream → OpenAI chat.completion.chunk stream.
//   message_start          → role chunk {"role":"assistant","content":""}
//   text_delta             → {"content": ...}
//   tool_use block start   → {"tool_calls":[{index,id,type,function:{name,arguments:""}}]}
//   input_json_delta       → {"tool_calls":[{index,function:{arguments: partial_json}}]}
//                            ({"content": partial_json} for Options::answer_tool)
//   thinking_delta         → {"reasoning_content": ...}
//   message_delta          → finish chunk (finish_reason mapped)
//   message_stop           → usage chunk (choices: [], when include_usage) + data: [DONE]
//   error                  → data: {"error":{...}} (no [DONE])
class AnthropicToOpenAiStream {
 public:
  struct Options {
    std::string model;             // the model name the client sees
    std::string id;                // chunk id; empty → derived from the upstream message id
    int64_t created_unix_s = 0;
    bool include_usage = false;    // the client asked for stream_options.include_usage
    // The tool that answers a JSON response_format ("" for none): its input_json_delta
    // pieces are content deltas, and its tool_use stop is finish_reason stop.
    std::string answer_tool;
  };
  explicit AnthropicToOpenAiStream(Options options);

  // Returns the upstream's error (an `error` event) or kUpstream (unparseable event);
  // in both cases the OpenAI error event is already in `out` and the stream is failed.
  Result<void> feed(const SseEvent& event, std::string& out);
  Result<void> feed(std::string_view data, std::string& out);
  // Upstream EOF. Ok iff completed; an open stream becomes failed (error event
  // appended); a failed one returns its error again without appending.
  Result<void> finish(std::string& out);
  // The gateway gave up (deadline, connection reset, upstream HTTP error): appends the
  // error event unless the stream already completed or failed.
  void abort(const Error& error, std::string& out);

  StreamState state() const { return state_; }
  Usage current_usage() const { return usage_.to_usage(); }

 private:
  struct Block {
    enum class Kind { kText, kToolUse, kAnswer, kThinking, kOther } kind = Kind::kOther;
    int tool_index = -1;  // OpenAI tool_calls index (counts tool calls, not blocks)
  };
  Result<void> on_event(simdjson::dom::element ev, std::string& out);
  // `data: {"id":..,"choices":[{"index":0,"delta":`; returns where the payload starts.
  size_t begin_chunk(std::string& out) const;
  void end_chunk(std::string& out, size_t at, std::string_view finish_reason) const;
  void role_chunk(std::string& out);
  void fail(Error e, std::string& out);

  Options opt_;
  simdjson::dom::parser parser_;
  StreamState state_ = StreamState::kOpen;
  std::optional<Error> error_;
  AnthropicUsage usage_;
  std::vector<Block> blocks_;
  int tool_calls_ = 0;
  bool answered_ = false;  // the answer tool was used
  bool role_sent_ = false;
  bool finish_sent_ = false;
};

// OpenAI chat.completion.chunk stream → the exact Anthropic event sequence:
//   message_start, then per block content_block_start (+ ping after the first),
//   content_block_delta (text_delta | input_json_delta | thinking_delta),
//   content_block_stop; a new block on every switch between text, reasoning and each
//   tool call; at [DONE]: message_delta (stop_reason, full usage) and message_stop.
// message_delta waits for [DONE] because the include_usage chunk arrives after the
// finish_reason chunk; content is never held back.
// Tool-call deltas for a call whose block was already closed (interleaved parallel
// calls) cannot be expressed in Anthropic's sequential blocks and fail the stream.
class OpenAiToAnthropicStream {
 public:
  struct Options {
    std::string model;              // the model name the client sees
    std::string id;                 // message id; empty → derived from the chunk id
    int64_t input_tokens_hint = 0;  // message_start usage before the upstream reports it
  };
  explicit OpenAiToAnthropicStream(Options options);

  Result<void> feed(const SseEvent& event, std::string& out);
  Result<void> feed(std::string_view data, std::string& out);
  Result<void> finish(std::string& out);
  void abort(const Error& error, std::string& out);

  StreamState state() const { return state_; }
  Usage current_usage() const { return usage_; }

 private:
  enum class Kind { kNone, kText, kThinking, kTool };
  Result<void> on_chunk(simdjson::dom::element chunk, std::string& out);
  Result<void> on_tool_delta(simdjson::dom::element tc, std::string& out);
  void message_start(std::string_view upstream_id, std::string& out);
  void open_block(Kind kind, int tool_index, std::string_view id, std::string_view name,
                  std::string& out);
  void close_block(std::string& out);
  void delta(std::string_view delta_type, std::string_view field, std::string_view value,
             std::string& out);
  void complete(std::string& out);
  void fail(Error e, std::string& out);

  Options opt_;
  simdjson::dom::parser parser_;
  StreamState state_ = StreamState::kOpen;
  std::optional<Error> error_;
  Usage usage_;
  bool started_ = false;
  bool pinged_ = false;
  int next_block_ = 0;
  Kind current_ = Kind::kNone;
  int current_tool_ = -1;
  std::vector<bool> tool_opened_;  // by OpenAI tool index
  std::string finish_reason_;
};

// Usage and outcome of an Anthropic stream relayed byte-for-byte to an Anthropic
// client: merges message_start and message_delta usage, notes message_stop and errors.
// Observing never changes the bytes; the caller forwards them itself.
class AnthropicUsageTracker {
 public:
  void observe(const SseEvent& event);
  void observe(std::string_view data);

  Usage current_usage() const { return usage_.to_usage(); }
  StreamState state() const { return state_; }
  const std::string& stop_reason() const { return stop_reason_; }
  // The upstream's error event, or kUpstream for unparseable data; set when failed.
  const std::optional<Error>& error() const { return error_; }
  // Upstream EOF: ok iff message_stop was seen; otherwise the error to render
  // (render_anthropic_error_event) in place of a clean end.
  Result<void> finish();

 private:
  simdjson::dom::parser parser_;
  AnthropicUsage usage_;
  StreamState state_ = StreamState::kOpen;
  std::optional<Error> error_;
  std::string stop_reason_;
};

}  // namespace frugal
