// backends/http/anthropic_backend: request encoding (URL, headers, model replacement)
// and the Call wrapper that turns Anthropic bytes into the canonical OpenAI dialect,
// driven over replayed upstream bytes.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "backends/http/anthropic_backend.h"
#include "backends/replay_call.h"

using namespace frugal;
using frugal::backends::CallState;
using frugal::backends::ReplayCall;

namespace {

config::ProviderConfig provider(std::string base_url) {
  config::ProviderConfig p;
  p.name = "claude";
  p.kind = config::ProviderKind::kAnthropic;
  p.base_url = std::move(base_url);
  p.api_key = "sk-ant";
  return p;
}

bool has_header(const http::HttpRequest& r, const std::string& line) {
  return std::find(r.headers.begin(), r.headers.end(), line) != r.headers.end();
}

boost::asio::awaitable<void> drain(std::shared_ptr<backends::Call> call) {
  while (call->state() != CallState::kDone) co_await call->wait();
}

// Runs the call to completion the way a codec does and returns every byte it yielded.
std::string run(const std::shared_ptr<backends::Call>& call) {
  boost::asio::io_context io;
  boost::asio::co_spawn(io, drain(call), boost::asio::detached);
  io.run();
  return call->take_body();
}

std::shared_ptr<backends::Call> translated(int status, std::string ctype, std::string body) {
  return http::wrap_anthropic_call(std::make_shared<ReplayCall>(status, std::move(ctype), std::move(body)),
                                   "claude-x", true);
}

const char* kMessage =
    R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"Hi"},)"
    R"({"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}],"stop_reason":"tool_use","stop_sequence":null,)"
    R"("usage":{"input_tokens":10,"cache_read_input_tokens":20,"cache_creation_input_tokens":5,"output_tokens":3}})";

}  // namespace

TEST_CASE("replace_model swaps only the top-level model value, byte for byte elsewhere") {
  const std::string body = R"( { "metadata": {"model": "keep"}, "model" : "alias",  "x": [1, 2.50, "\u00e9"], "s": "model" } )";
  auto r = http::replace_model(body, "claude-\"real\"");
  REQUIRE(r.ok());
  CHECK(*r == R"( { "metadata": {"model": "keep"}, "model" : "claude-\"real\"",  "x": [1, 2.50, "\u00e9"], "s": "model" } )");
  // An escaped key cannot be found in the text: the members are re-serialised instead.
  auto esc = http::replace_model(R"({"\u006dodel":"alias","n":1})", "m2");
  REQUIRE(esc.ok());
  CHECK(*esc == R"({"model":"m2","n":1})");
  CHECK_FALSE(http::replace_model("[1]", "m").ok());
}

TEST_CASE("Anthropic URLs and headers") {
  CHECK(http::anthropic_url(provider("https://api.anthropic.com"), "/messages") == "https://api.anthropic.com/v1/messages");
  CHECK(http::anthropic_url(provider("http://h/v1"), "/messages/count_tokens") == "http://h/v1/messages/count_tokens");

  auto p = provider("http://h");
  auto plain = http::anthropic_request(p, "/messages", "{}", {}, false);
  CHECK(has_header(plain, "x-api-key: sk-ant"));
  CHECK(has_header(plain, "anthropic-version: 2023-06-01"));
  for (const auto& h : plain.headers) CHECK(h.rfind("Authorization", 0) != 0);

  p.headers["anthropic-version"] = "2024-10-22";
  p.headers["anthropic-beta"] = "gw-1";
  p.headers["x-extra"] = "1";
  auto from_provider = http::anthropic_request(p, "/messages", "{}", {}, true);
  CHECK(has_header(from_provider, "anthropic-version: 2024-10-22"));
  CHECK(has_header(from_provider, "anthropic-beta: gw-1"));
  CHECK(has_header(from_provider, "x-extra: 1"));
  CHECK(has_header(from_provider, "Accept: text/event-stream"));

  auto from_client = http::anthropic_request(
      p, "/messages", "{}", {{"anthropic-version", "2023-06-01"}, {"anthropic-beta", "tools-1"}}, false);
  CHECK(has_header(from_client, "anthropic-version: 2023-06-01"));
  CHECK(has_header(from_client, "anthropic-beta: gw-1,tools-1"));
  CHECK(std::count_if(from_client.headers.begin(), from_client.headers.end(),
                      [](const std::string& h) { return h.rfind("anthropic-version", 0) == 0; }) == 1);
}

TEST_CASE("a translated message becomes a chat.completion with cache usage") {
  auto call = translated(200, "application/json", kMessage);
  CHECK(call->state() == CallState::kWaitingHeaders);  // headers only once the body is translated
  const std::string body = run(call);
  CHECK(call->status() == 200);
  CHECK(call->got_headers());
  CHECK(call->header("content-type") == "application/json");
  CHECK(call->dialect() == Dialect::kOpenAi);
  simdjson::dom::parser p;
  simdjson::dom::element root = p.parse(body);
  CHECK(root["object"].get_string().value() == "chat.completion");
  CHECK(root["choices"].at(0)["message"]["content"].get_string().value() == "Hi");
  CHECK(root["choices"].at(0)["message"]["tool_calls"].at(0)["function"]["arguments"].get_string().value() == R"({"a":1})");
  CHECK(root["choices"].at(0)["finish_reason"].get_string().value() == "tool_calls");
  CHECK(root["usage"]["prompt_tokens"].get_int64().value() == 35);
  CHECK(root["usage"]["prompt_tokens_details"]["cached_tokens"].get_int64().value() == 20);
  CHECK(root["usage"]["completion_tokens"].get_int64().value() == 3);
}

TEST_CASE("Anthropic errors keep their status and become OpenAI-shaped, garbage is a 502") {
  auto overloaded = translated(529, "application/json",
                               R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  const std::string body = run(overloaded);
  CHECK(overloaded->status() == 529);
  CHECK(body == R"({"error":{"message":"Overloaded","type":"upstream_error","param":null,"code":null}})");

  auto bad = translated(400, "application/json",
                        R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}})");
  CHECK(run(bad) == R"({"error":{"message":"max_tokens: too big","type":"invalid_request_error","param":null,"code":null}})");

  auto garbage = translated(200, "application/json", "<html>proxy</html>");
  const std::string g = run(garbage);
  CHECK(garbage->status() == 502);
  CHECK(g.find(R"("type":"upstream_error")") != std::string::npos);
}

TEST_CASE("a translated stream: chunks per delta, tool arguments in pieces, usage and [DONE]") {
  const std::string events =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_7\",\"usage\":{\"input_tokens\":4,\"cache_read_input_tokens\":6,\"output_tokens\":1}}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"f\",\"input\":{}}}\n\n"
      "event: ping\ndata: {\"type\":\"ping\"}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":8}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  auto call = translated(200, "text/event-stream", events);
  CHECK(call->state() == CallState::kStreaming);
  CHECK(call->header("content-type") == "text/event-stream");
  const std::string out = run(call);
  CHECK(call->state() == CallState::kDone);
  CHECK(out.find(R"("tool_calls":[{"index":0,"id":"toolu_9","type":"function","function":{"name":"f","arguments":""}}])") != std::string::npos);
  CHECK(out.find(R"("function":{"arguments":"{\"a\":"})") != std::string::npos);
  CHECK(out.find(R"("function":{"arguments":"1}"})") != std::string::npos);
  CHECK(out.find(R"("finish_reason":"tool_calls")") != std::string::npos);
  CHECK(out.find(R"("usage":{"prompt_tokens":10,"completion_tokens":8,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":6})") != std::string::npos);
  CHECK(out.size() >= 10);
  CHECK(out.substr(out.size() - 14) == "data: [DONE]\n\n");

  // A stream that stops early yields what arrived and no [DONE]; the codec reports it.
  auto cut = translated(200, "text/event-stream", events.substr(0, events.find("event: content_block_stop")));
  const std::string partial = run(cut);
  CHECK(partial.find("[DONE]") == std::string::npos);
  CHECK(partial.find(R"("arguments":"1}")") != std::string::npos);
  // The bytes carry no usage yet, but the call knows what message_start reported.
  const Usage u = cut->usage_so_far();
  CHECK(u.reported);
  CHECK(u.input_tokens == 10);
  CHECK(u.cached_input_tokens == 6);
  CHECK(u.output_tokens == 1);
}

TEST_CASE("pass-through relays the provider's bytes untouched, marked as Anthropic") {
  const std::string events = "event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: ping\ndata: {}\n\n";
  auto call = http::wrap_anthropic_call(std::make_shared<ReplayCall>(200, "text/event-stream", events), "m", false);
  CHECK(call->dialect() == Dialect::kAnthropic);
  CHECK(run(call) == events);
  auto err = http::wrap_anthropic_call(
      std::make_shared<ReplayCall>(429, "application/json", R"({"type":"error","error":{"type":"rate_limit_error","message":"x"}})"),
      "m", false);
  CHECK(err->status() == 429);
  CHECK(run(err) == R"({"type":"error","error":{"type":"rate_limit_error","message":"x"}})");
}
