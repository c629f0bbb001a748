#pragma once
// A scripted Anthropic Messages API upstream, as pure functions: given the parsed
// request and a script, produce exactly what api.anthropic.com would send — the
// non-streaming `message` body, or the SSE event sequence
//   message_start, [content_block_start, ping (after the first start),
//   content_block_delta..., content_block_stop]*, message_delta, message_stop
// The HTTP mock (bench/) serves these bytes; it decides pacing and status codes.
//
// Fidelity notes: message_start carries input and cache counters with output_tokens 1
// (as the real API does); message_delta carries the cumulative output_tokens; every
// tool block opens with an empty input_json_delta; deltas never split a UTF-8 sequence.
// Token counts are not computed from text: the script states them.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/dialect/anthropic_request.h"

namespace frugal::mock {

struct AnthropicScript {
  struct ToolCall {
    std::string id = "toolu_mock_01";
    std::string name;
    std::string input_json = "{}";  // a JSON object, streamed in chunk_size pieces
  };
  std::string thinking;               // non-empty → a thinking block first
  std::string text;                   // non-empty → a text block
  std::optional<ToolCall> tool_call;  // → a tool_use block after the text, stop_reason tool_use
  size_t chunk_size = 16;             // bytes per delta (≥ 1)

  int64_t input_tokens = 0;  // Anthropic convention: excludes cache reads and writes
  int64_t output_tokens = 0;
  int64_t cache_read_input_tokens = 0;
  int64_t cache_write_5m_tokens = 0;
  int64_t cache_write_1h_tokens = 0;

  std::string message_id = "msg_mock_01";
  std::string stop_reason;  // "" → stop_sequence if a request stop sequence occurs in
                            // `text` (text is cut there), tool_use if tool_call, else end_turn
  // Failure injection for streams: after this many events, end the stream — with an
  // `error` event of `error_type` when that is non-empty, or by just stopping (a cut).
  std::optional<size_t> fail_after_events;
  std::string error_type;  // e.g. "overloaded_error"
};

// The `message` body of a non-streaming 200 response.
std::string anthropic_mock_message(const AnthropicRequestInfo& request, const AnthropicScript& script);

// The SSE events of a streaming 200 response, one complete event ("event: ..\ndata: ..\n\n")
// per element, so a server can pace or split them.
std::vector<std::string> anthropic_mock_events(const AnthropicRequestInfo& request,
                                               const AnthropicScript& script);

// The body of a non-2xx response: {"type":"error","error":{"type":..,"message":..}}.
std::string anthropic_mock_error(std::string_view error_type, std::string_view message);

}  // namespace frugal::mock
