// tests backends/dialect/anthropic_to_openai_stream.cpp, openai_to_anthropic_stream.cpp and
// anthropic_usage_tracker.cpp with full stream transcripts.
#include "backends/dialect/streams.h"

#include <doctest/doctest.h>

#include <vector>

#include "core/sse.h"

namespace frugal {
namespace {

// Feeds `bytes` through a real SseParser in `piece`-byte network reads, as the gateway will.
template <class Translator>
std::string pump(Translator& t, std::string_view bytes, size_t piece = 7) {
  SseParser sse;
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += piece)
    sse.feed(bytes.substr(i, piece), [&](const SseEvent& ev) { (void)t.feed(ev, out); });
  return out;
}

std::string anthropic_event(std::string_view name, std::string_view data) {
  return "event: " + std::string(name) + "\ndata: " + std::string(data) + "\n\n";
}

std::string openai_data(std::string_view data) { return "data: " + std::string(data) + "\n\n"; }

// One chat.completion.chunk as AnthropicToOpenAiStream writes it (id chatcmpl-1, model alias).
std::string chunk(std::string_view delta, std::string_view finish = "null") {
  return openai_data(R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"alias","choices":[{"index":0,"delta":)" +
                     std::string(delta) + R"(,"logprobs":null,"finish_reason":)" + std::string(finish) + "}]}");
}

const std::string kAnthropicToolStream =
    anthropic_event("message_start", R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":100,"output_tokens":1}}})") +
    anthropic_event("content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})") +
    anthropic_event("ping", R"({"type": "ping"})") +
    anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}})") +
    anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"check."}})") +
    anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":0})") +
    anthropic_event("content_block_start", R"({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}})") +
    anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}})") +
    anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}})") +
    anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}})") +
    anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":1})") +
    anthropic_event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}})") +
    anthropic_event("message_stop", R"({"type":"message_stop"})");

TEST_CASE("Anthropic → OpenAI stream: text, streamed tool arguments, finish, usage, [DONE]") {
  AnthropicToOpenAiStream t({.model = "alias", .id = "", .created_unix_s = 1700000000, .include_usage = true});
  const std::string out = pump(t, kAnthropicToolStream);
  const std::string expected =
      chunk(R"({"role":"assistant","content":""})") +
      chunk(R"({"content":"Let me "})") +
      chunk(R"({"content":"check."})") +
      chunk(R"({"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":""}}]})") +
      chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]})") +
      chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]})") +
      chunk("{}", R"("tool_calls")") +
      openai_data(R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"alias","choices":[],"usage":{"prompt_tokens":125,"completion_tokens":42,"total_tokens":167,"prompt_tokens_details":{"cached_tokens":100},"completion_tokens_details":{"reasoning_tokens":0}}})") +
      "data: [DONE]\n\n";
  CHECK(out == expected);
  CHECK(t.state() == StreamState::kCompleted);
  std::string tail;
  CHECK(t.finish(tail).ok());
  CHECK(tail.empty());
  const Usage u = t.current_usage();
  CHECK(u.input_tokens == 125);
  CHECK(u.cached_input_tokens == 100);
  CHECK(u.output_tokens == 42);
}

TEST_CASE("Anthropic → OpenAI stream: each input_json_delta is forwarded when it arrives") {
  AnthropicToOpenAiStream t({.model = "alias", .id = "", .created_unix_s = 1700000000, .include_usage = false});
  SseParser sse;
  std::vector<std::string> per_event;
  sse.feed(kAnthropicToolStream, [&](const SseEvent& ev) {
    std::string out;
    REQUIRE(t.feed(ev, out).ok());
    per_event.push_back(out);
  });
  REQUIRE(per_event.size() == 13);
  CHECK(per_event[0] == chunk(R"({"role":"assistant","content":""})"));
  CHECK(per_event[2].empty());  // ping
  CHECK(per_event[7].empty());  // the empty opening partial_json
  CHECK(per_event[8] == chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]})"));
  CHECK(per_event[9] == chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]})"));
  CHECK(per_event[12] == "data: [DONE]\n\n");  // no usage chunk without include_usage
}

TEST_CASE("Anthropic → OpenAI stream: usage is visible mid-stream, a cut stream is an error") {
  AnthropicToOpenAiStream t({.model = "alias", .id = "", .created_unix_s = 1700000000, .include_usage = true});
  const size_t cut = kAnthropicToolStream.find("event: content_block_stop");
  std::string out = pump(t, std::string_view(kAnthropicToolStream).substr(0, cut));
  CHECK(t.state() == StreamState::kOpen);
  CHECK(t.current_usage().input_tokens == 125);
  CHECK(t.current_usage().output_tokens == 1);
  CHECK(t.current_usage().reported);
  out.clear();
  auto end = t.finish(out);
  REQUIRE_FALSE(end.ok());
  CHECK(end.error().kind == ErrorKind::kUpstream);
  CHECK(out == R"(data: {"error":{"message":"The upstream stream ended before message_stop.","type":"upstream_error","param":null,"code":null}})"
               "\n\n");
  CHECK(t.state() == StreamState::kFailed);
  std::string again;
  CHECK_FALSE(t.finish(again).ok());
  CHECK(again.empty());  // the client gets exactly one error
}

TEST_CASE("Anthropic → OpenAI stream: upstream error event, garbage, abort") {
  AnthropicToOpenAiStream t({.model = "alias", .id = "chatcmpl-fixed", .created_unix_s = 1, .include_usage = false});
  std::string out;
  REQUIRE(t.feed(R"({"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":5,"output_tokens":1}}})", out).ok());
  out.clear();
  auto r = t.feed(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", out);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::kUnavailable);
  CHECK(out == "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"upstream_error\",\"param\":null,\"code\":null}}\n\n");
  out.clear();
  CHECK(t.feed(R"({"type":"message_stop"})", out).ok());  // ignored after failure
  CHECK(out.empty());

  AnthropicToOpenAiStream g({.model = "m", .id = "", .created_unix_s = 1, .include_usage = false});
  auto bad = g.feed("{not json", out);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind == ErrorKind::kUpstream);

  AnthropicToOpenAiStream a({.model = "m", .id = "", .created_unix_s = 1, .include_usage = false});
  out.clear();
  a.abort(make_error(ErrorKind::kTimeout, "upstream first-token deadline"), out);
  CHECK(out.find("upstream first-token deadline") != std::string::npos);
  CHECK(a.state() == StreamState::kFailed);
}

TEST_CASE("Anthropic → OpenAI stream: events missing the object they describe are ignored, not read") {
  // Found by tests/fuzz/sse_stream: the translator read ev["delta"] etc. without checking
  // that it exists, which is undefined (a crash in a release build).
  AnthropicToOpenAiStream t({.model = "alias", .id = "chatcmpl-1", .created_unix_s = 1700000000, .include_usage = false});
  std::string out;
  CHECK(t.feed(R"({"type":"message_start"})", out).ok());
  CHECK(t.feed(R"({"type":"content_block_start","index":0})", out).ok());
  CHECK(t.feed(R"({"type":"content_block_start","index":1,"content_block":7})", out).ok());
  CHECK(t.feed(R"({"type":"content_block_delta","index":0})", out).ok());
  CHECK(t.feed(R"({"type":"content_block_delta","index":1,"delta":[1]})", out).ok());
  CHECK(t.feed(R"({"type":"message_delta","usage":{"output_tokens":3}})", out).ok());
  CHECK(t.state() == StreamState::kOpen);
  CHECK(out == chunk(R"({"role":"assistant","content":""})"));  // the role chunk, nothing else
  CHECK(t.feed(R"({"type":"message_stop"})", out).ok());
  CHECK(t.state() == StreamState::kCompleted);
  CHECK(t.current_usage().output_tokens == 3);
}

TEST_CASE("Anthropic → OpenAI stream: thinking becomes reasoning_content, max_tokens → length") {
  AnthropicToOpenAiStream t({.model = "alias", .id = "", .created_unix_s = 1700000000, .include_usage = false});
  const std::string in =
      anthropic_event("message_start", R"({"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":3,"output_tokens":1}}})") +
      anthropic_event("content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})") +
      anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}})") +
      anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}})") +
      anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":0})") +
      anthropic_event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":9}})") +
      anthropic_event("message_stop", R"({"type":"message_stop"})");
  CHECK(pump(t, in, 3) == chunk(R"({"role":"assistant","content":""})") + chunk(R"({"reasoning_content":"hmm"})") +
                              chunk("{}", R"("length")") + "data: [DONE]\n\n");
}

// ---- OpenAI → Anthropic --------------------------------------------------------------

std::string oa_chunk(std::string_view choices_or_usage) {
  return openai_data(R"({"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1,"model":"gpt-4o",)" +
                     std::string(choices_or_usage) + "}");
}

const std::string kOpenAiToolStream =
    oa_chunk(R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}])") +
    oa_chunk(R"("choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}])") +
    oa_chunk(R"("choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}])") +
    oa_chunk(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}])") +
    oa_chunk(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}])") +
    oa_chunk(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}])") +
    oa_chunk(R"("choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":null}])") +
    oa_chunk(R"("choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}])") +
    oa_chunk(R"("choices":[],"usage":{"prompt_tokens":50,"completion_tokens":20,"total_tokens":70,"prompt_tokens_details":{"cached_tokens":10}})") +
    "data: [DONE]\n\n";

TEST_CASE("OpenAI → Anthropic stream: the exact event sequence with text and two tool calls") {
  OpenAiToAnthropicStream t({.model = "alias", .id = "", .input_tokens_hint = 0});
  const std::string out = pump(t, kOpenAiToolStream, 11);
  const std::string expected =
      anthropic_event("message_start", R"({"type":"message_start","message":{"id":"msg_abc","type":"message","role":"assistant","model":"alias","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":0}}})") +
      anthropic_event("content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})") +
      anthropic_event("ping", R"({"type":"ping"})") +
      anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}})") +
      anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}})") +
      anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":0})") +
      anthropic_event("content_block_start", R"({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"call_1","name":"get_weather","input":{}}})") +
      anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}})") +
      anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}})") +
      anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":1})") +
      anthropic_event("content_block_start", R"({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_2","name":"get_time","input":{}}})") +
      anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}})") +
      anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":2})") +
      anthropic_event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":40,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":20}})") +
      anthropic_event("message_stop", R"({"type":"message_stop"})");
  CHECK(out == expected);
  CHECK(t.state() == StreamState::kCompleted);
  CHECK(t.current_usage().input_tokens == 50);
  CHECK(t.current_usage().cached_input_tokens == 10);
  CHECK(t.current_usage().output_tokens == 20);
  std::string tail;
  CHECK(t.finish(tail).ok());
  CHECK(tail.empty());
}

TEST_CASE("OpenAI → Anthropic stream: content is forwarded per chunk, message_delta waits for [DONE]") {
  OpenAiToAnthropicStream t({.model = "alias", .id = "msg_fixed", .input_tokens_hint = 12});
  std::string out;
  REQUIRE(t.feed(R"({"id":"x","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]})", out).ok());
  CHECK(out.find(R"("id":"msg_fixed")") != std::string::npos);
  CHECK(out.find(R"("input_tokens":12)") != std::string::npos);
  CHECK(out.find(R"("text":"Hi")") != std::string::npos);
  out.clear();
  REQUIRE(t.feed(R"({"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"length"}]})", out).ok());
  CHECK(out == anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":0})"));
  out.clear();
  REQUIRE(t.feed("[DONE]", out).ok());
  // No usage chunk came: the message_start hint stands, output unknown.
  CHECK(out == anthropic_event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":0}})") +
               anthropic_event("message_stop", R"({"type":"message_stop"})"));
  CHECK_FALSE(t.current_usage().reported);
}

TEST_CASE("OpenAI → Anthropic stream: reasoning_content opens a thinking block before text") {
  OpenAiToAnthropicStream t({.model = "m", .id = "msg_1", .input_tokens_hint = 0});
  std::string out;
  REQUIRE(t.feed(R"({"choices":[{"index":0,"delta":{"reasoning_content":"think"}}]})", out).ok());
  REQUIRE(t.feed(R"({"choices":[{"index":0,"delta":{"content":"answer"}}]})", out).ok());
  CHECK(out.find(R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}})") != std::string::npos);
  CHECK(out.find(R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"think"}})") != std::string::npos);
  CHECK(out.find(R"({"type":"content_block_stop","index":0})") != std::string::npos);
  CHECK(out.find(R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"answer"}})") != std::string::npos);
}

TEST_CASE("OpenAI → Anthropic stream: cut, upstream error, interleaved tool calls") {
  {
    OpenAiToAnthropicStream t({.model = "m", .id = "", .input_tokens_hint = 0});
    const size_t cut = kOpenAiToolStream.find("data: [DONE]");
    std::string out = pump(t, std::string_view(kOpenAiToolStream).substr(0, cut));
    CHECK(out.find("message_stop") == std::string::npos);
    CHECK(t.current_usage().input_tokens == 50);  // the usage chunk arrived before the cut
    out.clear();
    auto end = t.finish(out);
    REQUIRE_FALSE(end.ok());
    CHECK(out == "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The upstream stream ended before data: [DONE].\"}}\n\n");
  }
  {
    OpenAiToAnthropicStream t({.model = "m", .id = "", .input_tokens_hint = 0});
    std::string out;
    REQUIRE(t.feed(R"({"choices":[{"index":0,"delta":{"content":"x"}}]})", out).ok());
    out.clear();
    auto r = t.feed(R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})", out);
    REQUIRE_FALSE(r.ok());
    CHECK(out == "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Rate limit reached\"}}\n\n");
    CHECK(t.state() == StreamState::kFailed);
  }
  {
    OpenAiToAnthropicStream t({.model = "m", .id = "", .input_tokens_hint = 0});
    std::string out;
    REQUIRE(t.feed(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{"}}]}}]})", out).ok());
    REQUIRE(t.feed(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{"}}]}}]})", out).ok());
    out.clear();
    auto r = t.feed(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}}]})", out);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::kUpstream);
    CHECK(out.rfind("event: error\n", 0) == 0);
  }
}

// ---- pass-through usage ------------------------------------------------------------------

TEST_CASE("AnthropicUsageTracker merges message_start and message_delta usage") {
  AnthropicUsageTracker tr;
  SseParser sse;
  const std::string in =
      anthropic_event("message_start", R"({"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":10,"cache_creation_input_tokens":300,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":300},"output_tokens":1}}})") +
      anthropic_event("content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}})") +
      // Newer API versions repeat the cumulative input counters in message_delta.
      anthropic_event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":10,"cache_creation_input_tokens":300,"cache_read_input_tokens":0,"output_tokens":57}})");
  sse.feed(in, [&](const SseEvent& ev) { tr.observe(ev); });
  Usage u = tr.current_usage();
  CHECK(u.reported);
  CHECK(u.input_tokens == 310);
  CHECK(u.cache_write_1h_tokens == 300);
  CHECK(u.cache_write_5m_tokens == 0);
  CHECK(u.output_tokens == 57);
  CHECK(tr.stop_reason() == "end_turn");
  CHECK(tr.state() == StreamState::kOpen);
  sse.feed(anthropic_event("message_stop", R"({"type":"message_stop"})"), [&](const SseEvent& ev) { tr.observe(ev); });
  CHECK(tr.finish().ok());
}

TEST_CASE("AnthropicUsageTracker: a cut stream and an error event are failures") {
  AnthropicUsageTracker cut;
  cut.observe(R"({"type":"message_start","message":{"usage":{"input_tokens":4,"output_tokens":1}}})");
  auto r = cut.finish();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::kUpstream);
  CHECK(cut.current_usage().input_tokens == 4);  // still billable

  AnthropicUsageTracker err;
  err.observe(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  CHECK(err.state() == StreamState::kFailed);
  REQUIRE(err.error().has_value());
  CHECK(err.error()->kind == ErrorKind::kUnavailable);
  CHECK_FALSE(err.finish().ok());
}

}  // namespace
}  // namespace frugal
