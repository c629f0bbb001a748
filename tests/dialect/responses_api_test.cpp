// tests backends/dialect/responses_api_request.cpp and responses_api_response.cpp: the
// Responses API translated to chat completions and the canonical answer rendered back.
#include "backends/dialect/responses_api.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/sse.h"
#include "tests/dialect/json_test_util.h"

namespace frugal {
namespace {

using test::canon;

Result<ResponsesRequest> translate(std::string_view body) {
  static simdjson::dom::parser parser;
  simdjson::dom::element root;
  REQUIRE_FALSE(parser.parse(body.data(), body.size()).get(root));
  return responses_to_chat_request(root);
}

std::string chat_of(std::string_view body) {
  auto r = translate(body);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return canon(r->chat_body);
}

Error error_of(std::string_view body) {
  auto r = translate(body);
  REQUIRE_FALSE(r.ok());
  return r.error();
}

// The SSE events of `out` as (event name, parsed data) pairs.
struct Ev {
  std::string name;
  std::string data;
};
std::vector<Ev> events_of(std::string_view out) {
  std::vector<Ev> evs;
  SseParser sse;
  sse.feed(out, [&](const SseEvent& ev) { evs.push_back({std::string(ev.event), std::string(ev.data)}); });
  return evs;
}

std::string chunk(std::string_view delta, std::string_view finish = "null") {
  return R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":)" +
         std::string(delta) + R"(,"finish_reason":)" + std::string(finish) + "}]}";
}

ResponsesFrame frame(const ResponsesEcho& echo) {
  ResponsesFrame f;
  f.id = "resp_abc";
  f.created_at = 1700000000;
  f.model = "gpt-4o-mini";
  f.echo = &echo;
  return f;
}

TEST_CASE("responses request: a string input with instructions becomes system and user messages") {
  CHECK(chat_of(R"({"model":"gpt-4o-mini","input":"Hi","instructions":"Be brief","max_output_tokens":50,
                    "temperature":0.2,"top_p":0.9,"user":"u1","metadata":{"team":"a"}})") ==
        canon(R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief"},{"role":"user","content":"Hi"}],
                  "max_completion_tokens":50,"temperature":0.2,"top_p":0.9,"user":"u1"})"));
}

TEST_CASE("responses request: metadata is kept for policy matchers, not sent upstream") {
  auto r = translate(R"({"model":"m","input":"Hi","metadata":{"team":"a"}})");
  REQUIRE(r.ok());
  REQUIRE(r->metadata.has_value());
  std::string_view team;
  CHECK_FALSE((*r->metadata)["team"].get_string().get(team));
  CHECK(team == "a");
  CHECK(r->chat_body.find("metadata") == std::string::npos);  // OpenAI refuses it without store
  CHECK(error_of(R"({"model":"m","input":"Hi","metadata":[]})").param == "metadata");
}

TEST_CASE("responses request: a streamed request asks the upstream for usage") {
  auto r = translate(R"({"model":"m","input":"Hi","stream":true})");
  REQUIRE(r.ok());
  CHECK(r->stream);
  CHECK(canon(r->chat_body) ==
        canon(R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}})"));
}

TEST_CASE("responses request: input items, function calls and their outputs become one chat conversation") {
  CHECK(chat_of(R"({"model":"m","input":[
      {"role":"developer","content":"Use tools"},
      {"type":"message","role":"user","content":[{"type":"input_text","text":"Weather in "},{"type":"input_text","text":"Paris?"},
                                                 {"type":"input_image","image_url":"https://x/y.png","detail":"low"}]},
      {"type":"reasoning","id":"rs_1","summary":[]},
      {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
      {"type":"function_call","call_id":"call_1","name":"weather","arguments":"{\"city\":\"Paris\"}"},
      {"type":"function_call","call_id":"call_2","name":"time","arguments":"{}"},
      {"type":"function_call_output","call_id":"call_1","output":"18C"},
      {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"noon"}]}]})") ==
        canon(R"({"model":"m","messages":[
      {"role":"developer","content":"Use tools"},
      {"role":"user","content":[{"type":"text","text":"Weather in "},{"type":"text","text":"Paris?"},
                                {"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]},
      {"role":"assistant","content":"Checking.","tool_calls":[
         {"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
         {"id":"call_2","type":"function","function":{"name":"time","arguments":"{}"}}]},
      {"role":"tool","content":"18C","tool_call_id":"call_1"},
      {"role":"tool","content":"noon","tool_call_id":"call_2"}]})"));
}

TEST_CASE("responses request: function tools, tool_choice, text.format and reasoning effort") {
  CHECK(chat_of(R"({"model":"m","input":"x","tools":[{"type":"function","name":"weather","description":"d",
                     "parameters":{"type":"object","properties":{}},"strict":true}],
                    "tool_choice":{"type":"function","name":"weather"},"parallel_tool_calls":false,
                    "text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true}},
                    "reasoning":{"effort":"low","summary":"auto"}})") ==
        canon(R"({"model":"m","messages":[{"role":"user","content":"x"}],
                  "tools":[{"type":"function","function":{"name":"weather","description":"d",
                            "parameters":{"type":"object","properties":{}},"strict":true}}],
                  "tool_choice":{"type":"function","function":{"name":"weather"}},"parallel_tool_calls":false,
                  "response_format":{"type":"json_schema","json_schema":{"name":"out","schema":{"type":"object"},"strict":true}},
                  "reasoning_effort":"low"})"));
  CHECK(chat_of(R"({"model":"m","input":"x","text":{"format":{"type":"json_object"}},"tool_choice":"none"})") ==
        canon(R"({"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"none",
                  "response_format":{"type":"json_object"}})"));
  CHECK(chat_of(R"({"model":"m","input":"x","text":{"format":{"type":"text"}},"store":false,"include":[],
                    "truncation":"disabled","previous_response_id":null})") ==
        canon(R"({"model":"m","messages":[{"role":"user","content":"x"}]})"));
}

TEST_CASE("responses request: bad input is a 400 naming the field") {
  Error e = error_of(R"({"input":"x"})");
  CHECK(e.kind == ErrorKind::kInvalidRequest);
  CHECK(e.param == "model");
  CHECK(error_of(R"({"model":"m"})").param == "input");
  CHECK(error_of(R"({"model":"m","input":42})").param == "input");
  e = error_of(R"({"model":"m","input":[{"type":"computer_call","id":"x"}]})");
  CHECK(e.param == "input[0].type");
  CHECK(e.message.find("computer_call") != std::string::npos);
  CHECK(error_of(R"({"model":"m","input":[{"type":"message","role":"robot","content":"x"}]})").param == "input[0].role");
  CHECK(error_of(R"({"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]})").param ==
        "input[0].call_id");
  CHECK(error_of(R"({"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]})").param ==
        "input[0].content[0].type");
  CHECK(error_of(R"({"model":"m","input":"x","tools":[{"type":"web_search"}]})").param == "tools[0].type");
  CHECK(error_of(R"({"model":"m","input":"x","text":{"format":{"type":"yaml"}}})").param == "text.format.type");
  CHECK(error_of(R"({"model":"m","input":"x","max_output_tokens":0})").param == "max_output_tokens");
  e = error_of(R"({"model":"m","input":"x","frobnicate":1})");
  CHECK(e.param == "frobnicate");
  CHECK(e.code == "unknown_parameter");
}

TEST_CASE("responses request: stored-response features are refused, store false and absent are served") {
  for (const char* body : {R"({"model":"m","input":"x","store":true})",
                           R"({"model":"m","input":"x","previous_response_id":"resp_1"})",
                           R"({"model":"m","input":"x","background":true})",
                           R"({"model":"m","input":[{"type":"item_reference","id":"msg_1"}]})"}) {
    CAPTURE(body);
    const Error e = error_of(body);
    CHECK(e.kind == ErrorKind::kInvalidRequest);
    CHECK(e.message.find("does not keep responses") != std::string::npos);
  }
  CHECK(translate(R"({"model":"m","input":"x","store":false})").ok());
  CHECK(translate(R"({"model":"m","input":"x"})").ok());
}

TEST_CASE("responses body: text, reasoning and usage of a chat completion") {
  auto rr = translate(R"({"model":"m","input":"x","instructions":"be brief","temperature":0.5})");
  REQUIRE(rr.ok());
  auto tr = chat_to_responses_body(
      R"({"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,
          "message":{"role":"assistant","content":"Hello","reasoning_content":"think"},"finish_reason":"stop"}],
          "usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19,"prompt_tokens_details":{"cached_tokens":4},
                   "completion_tokens_details":{"reasoning_tokens":2}}})",
      frame(rr->echo));
  REQUIRE(tr.ok());
  CHECK(tr->stop_reason == "completed");
  CHECK(tr->usage.input_tokens == 12);
  CHECK(canon(tr->body) == canon(R"({"id":"resp_abc","object":"response","created_at":1700000000,"status":"completed",
      "background":false,"error":null,"incomplete_details":null,"model":"gpt-4o-mini-2024-07-18","output":[
        {"id":"rs_abc","type":"reasoning","summary":[{"type":"summary_text","text":"think"}]},
        {"id":"msg_abc","type":"message","status":"completed","role":"assistant","content":[
          {"type":"output_text","text":"Hello","annotations":[],"logprobs":[]}]}],
      "instructions":"be brief","max_output_tokens":null,"metadata":{},"parallel_tool_calls":true,
      "previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":false,"temperature":0.5,
      "text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1,"truncation":"disabled","user":null,
      "usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,
               "output_tokens_details":{"reasoning_tokens":2},"total_tokens":19}})"));
}

TEST_CASE("responses body: tool calls become function_call items and length is incomplete") {
  const ResponsesEcho echo;
  auto tr = chat_to_responses_body(
      R"({"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
          {"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},
          "finish_reason":"tool_calls"}]})",
      frame(echo));
  REQUIRE(tr.ok());
  CHECK(canon(tr->body).find(canon(R"([{"id":"fc_abc_0","type":"function_call","status":"completed",
      "arguments":"{\"city\":\"Paris\"}","call_id":"call_1","name":"weather"}])")) != std::string::npos);
  CHECK(canon(tr->body).find(R"("usage":null)") != std::string::npos);  // the upstream reported none

  tr = chat_to_responses_body(
      R"({"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"Hel"},"finish_reason":"length"}]})",
      frame(echo));
  REQUIRE(tr.ok());
  CHECK(tr->stop_reason == "incomplete");
  CHECK(canon(tr->body).find(R"("incomplete_details":{"reason":"max_output_tokens"})") != std::string::npos);
  CHECK(chat_to_responses_body("<html>", frame(echo)).error().kind == ErrorKind::kUpstream);
}

TEST_CASE("responses stream: text deltas make the full event sequence with sequence numbers") {
  const ResponsesEcho echo;
  ChatToResponsesStream s(frame(echo));
  std::string out;
  REQUIRE(s.feed(chunk(R"({"role":"assistant","content":""})"), out).ok());
  REQUIRE(s.feed(chunk(R"({"content":"Hel"})"), out).ok());
  REQUIRE(s.feed(chunk(R"({"content":"lo"})"), out).ok());
  REQUIRE(s.feed(chunk("{}", R"("stop")"), out).ok());
  REQUIRE(s.feed(R"({"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19,
                     "prompt_tokens_details":{"cached_tokens":3}}})", out).ok());
  REQUIRE(s.feed("[DONE]", out).ok());
  CHECK(s.saw_done());
  CHECK(s.state() == StreamState::kOpen);  // response.completed waits for complete()
  s.complete(out);
  CHECK(s.state() == StreamState::kCompleted);
  CHECK(s.current_usage().output_tokens == 7);

  const auto evs = events_of(out);
  std::vector<std::string> names;
  for (const auto& e : evs) names.push_back(e.name);
  CHECK(names == std::vector<std::string>{"response.created", "response.in_progress", "response.output_item.added",
                                          "response.content_part.added", "response.output_text.delta",
                                          "response.output_text.delta", "response.output_text.done",
                                          "response.content_part.done", "response.output_item.done",
                                          "response.completed"});
  for (size_t i = 0; i < evs.size(); ++i) {
    CAPTURE(evs[i].data);
    CHECK(evs[i].data.find("\"type\":\"" + evs[i].name + "\"") != std::string::npos);
    CHECK(evs[i].data.find("\"sequence_number\":" + std::to_string(i) + "}") != std::string::npos);
  }
  CHECK(canon(evs[4].data) == canon(R"({"type":"response.output_text.delta","item_id":"msg_abc","output_index":0,
      "content_index":0,"delta":"Hel","logprobs":[],"sequence_number":4})"));
  CHECK(evs[6].data.find(R"("text":"Hello")") != std::string::npos);
  CHECK(evs[0].data.find(R"("model":"m")") != std::string::npos);  // as the chunks name it
  CHECK(evs[9].data.find(R"("status":"completed")") != std::string::npos);
  CHECK(evs[9].data.find(R"("input_tokens_details":{"cached_tokens":3})") != std::string::npos);
  CHECK(evs[9].data.find(R"("output":[{"id":"msg_abc","type":"message","status":"completed")") != std::string::npos);
}

TEST_CASE("responses stream: tool-call argument deltas, interleaved calls and reasoning") {
  const ResponsesEcho echo;
  ChatToResponsesStream s(frame(echo));
  std::string out;
  REQUIRE(s.feed(chunk(R"({"reasoning_content":"hmm"})"), out).ok());
  REQUIRE(s.feed(chunk(R"({"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":""}}]})"), out).ok());
  REQUIRE(s.feed(chunk(R"({"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"g","arguments":"{}"}}]})"), out).ok());
  REQUIRE(s.feed(chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"x\":"}}]})"), out).ok());
  REQUIRE(s.feed(chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]})"), out).ok());
  REQUIRE(s.feed(chunk("{}", R"("tool_calls")"), out).ok());
  REQUIRE(s.feed("[DONE]", out).ok());
  s.complete(out);
  REQUIRE(s.state() == StreamState::kCompleted);
  const auto evs = events_of(out);
  std::vector<std::string> arg_deltas, done_args;
  for (const auto& e : evs) {
    if (e.name == "response.function_call_arguments.delta") arg_deltas.push_back(canon(e.data));
    if (e.name == "response.function_call_arguments.done") done_args.push_back(canon(e.data));
  }
  REQUIRE(arg_deltas.size() == 3);
  CHECK(arg_deltas[1].find(R"("item_id":"fc_abc_0","output_index":1,"delta":"{\"x\":")") != std::string::npos);
  REQUIRE(done_args.size() == 2);
  CHECK(done_args[0].find(R"("item_id":"fc_abc_0","output_index":1,"name":"f","arguments":"{\"x\":1}")") != std::string::npos);
  CHECK(done_args[1].find(R"("item_id":"fc_abc_1","output_index":2,"name":"g","arguments":"{}")") != std::string::npos);
  CHECK(evs[2].name == "response.output_item.added");
  CHECK(evs[2].data.find(R"("type":"reasoning")") != std::string::npos);
  CHECK(evs.back().data.find(R"("call_id":"call_b")") != std::string::npos);
}

TEST_CASE("responses stream: an upstream error chunk and an abort end with an error event") {
  const ResponsesEcho echo;
  ChatToResponsesStream s(frame(echo));
  std::string out;
  REQUIRE(s.feed(chunk(R"({"content":"Hi"})"), out).ok());
  CHECK_FALSE(s.feed(R"({"error":{"message":"overloaded","type":"server_error"}})", out).ok());
  CHECK(s.state() == StreamState::kFailed);
  auto evs = events_of(out);
  CHECK(evs.back().name == "error");
  CHECK(evs.back().data.find("overloaded") != std::string::npos);

  ChatToResponsesStream cut(frame(echo));
  out.clear();
  REQUIRE(cut.feed(chunk(R"({"content":"Hi"})"), out).ok());
  cut.abort(make_error(ErrorKind::kUpstream, "interrupted", "", "upstream_stream_interrupted"), out);
  cut.complete(out);  // no completion after a failure
  evs = events_of(out);
  CHECK(evs.back().name == "error");
  CHECK(canon(evs.back().data) == canon(R"({"type":"error","code":"upstream_stream_interrupted","message":"interrupted",
                                          "param":null,"sequence_number":5})"));
}

}  // namespace
}  // namespace frugal
