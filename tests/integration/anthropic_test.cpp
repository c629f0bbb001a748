// The Anthropic Messages API through the `frugal` binary, over loopback, against the
// C++ mock upstream speaking both protocols: pass-through (Anthropic client → Anthropic
// provider), both translation directions, errors in the client's shape, streams that
// break, and the usage hand-off (ChatExchange::finish, logged at debug level).
#include <doctest/doctest.h>
#include <simdjson.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::request;
using frugal::test::Response;

namespace {

struct Env {
  std::unique_ptr<Child> mock;
  std::unique_ptr<Child> gw;
  std::string mock_url, url;
  std::filesystem::path dir;

  Env() {
    dir = std::filesystem::temp_directory_path() / ("frugal-ait-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    mock = std::make_unique<Child>(std::vector<std::string>{MOCK_UPSTREAM_BIN, "--require-key", "sk-test"});
    mock_url = "http://127.0.0.1:" + mock->wait_for("PORT=(\\d+)");
    const std::string cfg = "data_dir: " + (dir / "data").string() + R"(
server:
  listen: ["127.0.0.1:0"]
  body_limit: 64KiB
  threads: 2
providers:
  claude:
    kind: anthropic
    base_url: )" + mock_url + R"(
    api_key: ${FRUGAL_TEST_KEY}
    headers: { anthropic-beta: gw-beta-1 }
    retry: { max_attempts: 2, base_delay: 5ms, max_delay: 20ms }
  claude_v1:
    kind: anthropic
    base_url: )" + mock_url + R"(/v1
    api_key: sk-test
    headers: { anthropic-version: "2024-10-22" }
  claude_badkey:
    kind: anthropic
    base_url: )" + mock_url + R"(
    api_key: sk-wrong
  openai:
    kind: openai
    base_url: )" + mock_url + R"(/v1
    api_key: sk-test
    retry: { max_attempts: 2, base_delay: 5ms, max_delay: 20ms }
models:
  sonnet: claude/claude-sonnet-4-5
  pinned: claude_v1/claude-pinned
  badant: claude_badkey/claude-x
  missing: openai/no-such-model
  mixed: [claude/claude-haiku, openai/gpt-4o-mini]
passthrough:
  - { prefix: "claude", provider: claude }
  - { prefix: "gpt-", provider: openai }
cache:
  routes:
    sonnet: { auto_prompt_cache: true }
)";
    std::ofstream(dir / "frugal.yaml") << cfg;
    gw = std::make_unique<Child>(std::vector<std::string>{FRUGAL_BIN, "serve", "--config", (dir / "frugal.yaml").string(),
                                                          "--log-level", "debug"},
                                 std::vector<std::string>{"FRUGAL_TEST_KEY=sk-test"});
    url = "http://127.0.0.1:" + gw->wait_for("listening on 127\\.0\\.0\\.1:(\\d+)");
  }
  ~Env() {
    gw.reset();
    mock.reset();
    std::filesystem::remove_all(dir);
  }
  Response messages(const std::string& body, std::vector<std::string> headers = {}) {
    gw->output();  // drain the debug log so the gateway never blocks on a full pipe
    headers.emplace_back("anthropic-version: 2023-06-01");
    return request("POST", url + "/v1/messages", body, std::move(headers));
  }
  Response chat(const std::string& body) {
    gw->output();  // drain the debug log so the gateway never blocks on a full pipe
    return request("POST", url + "/v1/chat/completions", body);
  }
  std::string last_upstream_body() { return request("GET", mock_url + "/mock/last_request").body; }
  std::string last_upstream_header(const std::string& name) {
    simdjson::dom::parser p;
    std::string_view v;
    if (p.parse(request("GET", mock_url + "/mock/last_headers").body)[name].get_string().get(v)) return "<absent>";
    return std::string(v);
  }
  int64_t mock_stat(const char* key) {
    simdjson::dom::parser p;
    return p.parse(request("GET", mock_url + "/mock/stats").body)[key].get_int64().value();
  }
  // The gateway's log line for request `id` containing `needle`, waiting up to 20 s.
  std::string log_line(const std::string& id, const std::string& needle) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      const std::string out = gw->output();
      size_t at = 0;
      while ((at = out.find(id, at)) != std::string::npos) {
        const size_t begin = out.rfind('\n', at) + 1;
        const std::string line = out.substr(begin, out.find('\n', at) - begin);
        if (line.find(needle) != std::string::npos) return line;
        at += id.size();
      }
      if (std::chrono::steady_clock::now() > deadline) return "<no line for " + id + " with '" + needle + "'>";
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
};

Env& env() {
  static Env e;
  return e;
}

struct Event {
  std::string name, data;
};

std::vector<Event> sse_events(const std::string& body) {
  std::vector<Event> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    const std::string block = body.substr(pos, end - pos);
    pos = end + 2;
    Event ev;
    size_t line_start = 0;
    while (line_start < block.size()) {
      size_t nl = block.find('\n', line_start);
      if (nl == std::string::npos) nl = block.size();
      const std::string line = block.substr(line_start, nl - line_start);
      if (line.rfind("event: ", 0) == 0) ev.name = line.substr(7);
      if (line.rfind("data: ", 0) == 0) ev.data = line.substr(6);
      line_start = nl + 1;
    }
    if (!ev.name.empty() || !ev.data.empty()) out.push_back(ev);
  }
  return out;
}

std::vector<std::string> names(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.name);
  return out;
}

// Asserts an Anthropic-shaped error body and returns error.type.
std::string anthropic_error_type(const Response& r) {
  simdjson::dom::parser p;
  simdjson::dom::element root;
  REQUIRE_MESSAGE(!p.parse(r.body).get(root), r.body);
  std::string_view type, etype, msg;
  CHECK_MESSAGE(!root["type"].get_string().get(type), r.body);
  CHECK(type == "error");
  CHECK_MESSAGE(!root["error"]["type"].get_string().get(etype), r.body);
  CHECK_MESSAGE(!root["error"]["message"].get_string().get(msg), r.body);
  CHECK(!msg.empty());
  simdjson::dom::element openai_style;
  CHECK(root["error"]["param"].get(openai_style) != simdjson::SUCCESS);  // not the OpenAI shape
  return std::string(etype);
}

int64_t json_int(const std::string& json, std::initializer_list<const char*> path) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  REQUIRE_MESSAGE(!p.parse(json).get(e), json);
  for (const char* k : path) REQUIRE_MESSAGE(!e[k].get(e), (std::string(k) + " in " + json));
  return e.get_int64().value();
}

const std::string kHello = R"("messages":[{"role":"user","content":"Say hello"}])";
const std::string kWeatherTool =
    R"("tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}])";

}  // namespace

TEST_CASE("pass-through: the client's body reaches Anthropic byte for byte, only the model replaced") {
  auto& e = env();
  // Whitespace, key order, cache_control and fields the gateway does not know must all survive.
  const std::string body =
      R"({"model": "sonnet", "max_tokens": 64,  "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],)"
      R"( "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello", "cache_control": {"type": "ephemeral"}}]}],)"
      R"( "future_field": {"x": [1, 2.50, "\u00e9"]}, "top_k": 5,)"
      R"( "mock": {"cache_read_input_tokens": 30, "cache_write_5m_tokens": 40, "cache_write_1h_tokens": 10, "input_tokens": 21, "output_tokens": 9}})";
  auto r = e.messages(body, {"anthropic-beta: prompt-caching-2024-07-31"});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  std::string expected = body;
  expected.replace(expected.find(R"("sonnet")"), 8, R"("claude-sonnet-4-5")");
  CHECK(e.last_upstream_body() == expected);
  CHECK(e.last_upstream_header("x-api-key") == "sk-test");
  CHECK(e.last_upstream_header("authorization") == "<absent>");
  CHECK(e.last_upstream_header("anthropic-version") == "2023-06-01");
  CHECK(e.last_upstream_header("anthropic-beta") == "gw-beta-1,prompt-caching-2024-07-31");
  CHECK(r.header("x-frugal-provider") == "claude");
  CHECK(r.header("request-id") == r.header("x-request-id"));

  // The provider's answer is relayed as is: usage with every cache field, exactly.
  CHECK(json_int(r.body, {"usage", "input_tokens"}) == 21);
  CHECK(json_int(r.body, {"usage", "cache_read_input_tokens"}) == 30);
  CHECK(json_int(r.body, {"usage", "cache_creation_input_tokens"}) == 50);
  CHECK(json_int(r.body, {"usage", "cache_creation", "ephemeral_1h_input_tokens"}) == 10);
  CHECK(json_int(r.body, {"usage", "output_tokens"}) == 9);
  CHECK(r.body.find(R"("model":"claude-sonnet-4-5")") != std::string::npos);
  // Usage handed to the billing layer, in core's convention (input includes cache reads/writes).
  const std::string line = e.log_line(r.header("x-request-id"), "finish");
  CHECK_MESSAGE(line.find("finish end=complete dialect=anthropic usage input=101 cached=30 cache_write_5m=40 "
                          "cache_write_1h=10 output=9 reported=1") != std::string::npos,
                line);
}

TEST_CASE("pass-through stream: Anthropic's exact event sequence, merged usage handed off") {
  auto& e = env();
  auto r = e.messages(R"({"model":"claude-haiku","max_tokens":64,"stream":true,)" + kHello + "," + kWeatherTool +
                          R"(,"mock":{"cache_read_input_tokens":12,"output_tokens":33,"chunk_size":6}})",
                      {"x-request-id: ait-stream-1"});
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "text/event-stream");
  const auto evs = sse_events(r.body);
  const auto n = names(evs);
  REQUIRE(n.size() > 10);
  CHECK(n.front() == "message_start");
  CHECK(n[1] == "content_block_start");
  CHECK(n[2] == "ping");
  CHECK(n[n.size() - 2] == "message_delta");
  CHECK(n.back() == "message_stop");
  int json_pieces = 0;
  for (const auto& ev : evs)
    if (ev.data.find("input_json_delta") != std::string::npos && ev.data.find(R"("partial_json":"")") == std::string::npos)
      ++json_pieces;
  CHECK(json_pieces >= 3);  // tool input streamed in pieces, not at the end
  CHECK(evs[n.size() - 2].data.find(R"("stop_reason":"tool_use")") != std::string::npos);
  // message_start carried input and cache counters, message_delta the output: merged.
  CHECK(e.log_line("ait-stream-1", "finish").find("end=complete dialect=anthropic usage input=37 cached=12 "
                                                  "cache_write_5m=0 cache_write_1h=0 output=33 reported=1") !=
        std::string::npos);
}

TEST_CASE("anthropic-version: the client's, else the provider's, else 2023-06-01, /v1 base URLs work") {
  auto& e = env();
  CHECK(request("POST", e.url + "/v1/messages", R"({"model":"pinned","max_tokens":5,)" + kHello + "}").status == 200);
  CHECK(e.last_upstream_header("anthropic-version") == "2024-10-22");
  CHECK(e.last_upstream_header("anthropic-beta") == "<absent>");
  CHECK(e.messages(R"({"model":"pinned","max_tokens":5,)" + kHello + "}").status == 200);
  CHECK(e.last_upstream_header("anthropic-version") == "2023-06-01");
  CHECK(request("POST", e.url + "/messages", R"({"model":"claude-x","max_tokens":5,)" + kHello + "}").status == 200);
  CHECK(e.last_upstream_header("anthropic-version") == "2023-06-01");
}

TEST_CASE("GET /v1/models lists Anthropic providers' models, in the client's API shape") {
  auto& e = env();
  simdjson::dom::parser p;
  // An Anthropic SDK sends anthropic-version: Anthropic's page shape.
  auto a = request("GET", e.url + "/v1/models", "", {"anthropic-version: 2023-06-01", "x-api-key: sk-client"});
  REQUIRE(a.status == 200);
  simdjson::dom::element root = p.parse(a.body);
  std::vector<std::string> ids;
  for (auto m : root["data"].get_array()) {
    CHECK(std::string_view(m["type"].get_string().value()) == "model");
    CHECK(m["created_at"].get_string().value().size() == 20);
    ids.emplace_back(m["id"].get_string().value());
    if (ids.back() == "claude-mock-1") {
      CHECK(std::string_view(m["display_name"].get_string().value()) == "Claude Mock One");
      CHECK(std::string_view(m["created_at"].get_string().value()) == "2025-02-19T00:00:00Z");
    }
  }
  CHECK(std::count(ids.begin(), ids.end(), "claude-mock-1") == 1);  // two providers list it: once
  CHECK(std::count(ids.begin(), ids.end(), "mock-model") == 1);     // the OpenAI provider's
  CHECK(std::count(ids.begin(), ids.end(), "sonnet") == 1);         // an alias
  CHECK(root["has_more"].get_bool().value() == false);
  CHECK(std::string_view(root["first_id"].get_string().value()) == ids.front());
  CHECK(std::string_view(root["last_id"].get_string().value()) == ids.back());

  // Any other client: OpenAI's list, the Anthropic models included.
  auto o = request("GET", e.url + "/v1/models");
  REQUIRE(o.status == 200);
  simdjson::dom::element oroot = p.parse(o.body);
  CHECK(std::string_view(oroot["object"].get_string().value()) == "list");
  bool found = false;
  for (auto m : oroot["data"].get_array()) {
    if (std::string_view(m["id"].get_string().value()) != "claude-mock-1") continue;
    found = true;
    CHECK(std::string_view(m["object"].get_string().value()) == "model");
    CHECK(m["created"].get_int64().value() == 1739923200);  // 2025-02-19T00:00:00Z
    CHECK(std::string_view(m["owned_by"].get_string().value()) == "anthropic");
  }
  CHECK(found);
}

TEST_CASE("Anthropic client, OpenAI-compatible upstream: plain, stream and a tool round trip") {
  auto& e = env();
  auto r = e.messages(R"({"model":"gpt-4o-mini","max_tokens":50,"system":"Be brief.","stop_sequences":["END"],)"
                      R"("temperature":0.5,"messages":[{"role":"user","content":"mock:{\"cached_tokens\":5} Say hello"}]})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.body.find(R"("type":"message")") != std::string::npos);
  CHECK(r.body.find(R"("text":"Hello from the mock upstream.")") != std::string::npos);
  CHECK(r.body.find(R"("stop_reason":"end_turn")") != std::string::npos);
  CHECK(json_int(r.body, {"usage", "input_tokens"}) == 7);  // 12 prompt tokens − 5 cached
  CHECK(json_int(r.body, {"usage", "cache_read_input_tokens"}) == 5);
  CHECK(json_int(r.body, {"usage", "output_tokens"}) == 7);
  const std::string up = e.last_upstream_body();
  CHECK(up.find(R"({"role":"system","content":"Be brief."})") != std::string::npos);
  CHECK(up.find(R"("stop":["END"])") != std::string::npos);
  CHECK(up.find(R"("max_tokens":50)") != std::string::npos);
  CHECK(e.last_upstream_header("authorization") == "Bearer sk-test");

  // Streamed tool call: input_json_delta pieces as the upstream's argument chunks arrive.
  auto s = e.messages(R"({"model":"gpt-4o-mini","max_tokens":50,"stream":true,)" + kHello + "," + kWeatherTool + "}");
  REQUIRE(s.status == 200);
  const auto evs = sse_events(s.body);
  const auto n = names(evs);
  REQUIRE(n.size() > 6);
  CHECK(n.front() == "message_start");
  CHECK(n[1] == "content_block_start");
  CHECK(n[2] == "ping");
  CHECK(n[n.size() - 2] == "message_delta");
  CHECK(n.back() == "message_stop");
  std::string args;
  int pieces = 0;
  for (const auto& ev : evs) {
    if (ev.data.find("input_json_delta") == std::string::npos) continue;
    simdjson::dom::parser p;
    std::string_view piece;
    REQUIRE(!p.parse(ev.data)["delta"]["partial_json"].get_string().get(piece));
    args += piece;
    ++pieces;
  }
  CHECK(pieces >= 3);
  CHECK(args == R"({"city":"Paris","unit":"celsius"})");
  CHECK(s.body.find(R"("content_block":{"type":"tool_use","id":"call_mock_1","name":"get_weather")") != std::string::npos);
  CHECK(evs[n.size() - 2].data.find(R"("stop_reason":"tool_use")") != std::string::npos);
  CHECK(json_int(evs[n.size() - 2].data, {"usage", "output_tokens"}) == 7);

  // The client sends the result back: a `tool` message upstream, the answer uses it.
  auto back = e.messages(R"({"model":"gpt-4o-mini","max_tokens":50,)" + kWeatherTool + R"(,"messages":[
      {"role":"user","content":"Weather in Paris?"},
      {"role":"assistant","content":[{"type":"tool_use","id":"call_mock_1","name":"get_weather","input":{"city":"Paris"}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_mock_1","content":"18C and sunny"}]}]})");
  REQUIRE_MESSAGE(back.status == 200, back.body);
  CHECK(back.body.find("Tool result received: 18C and sunny") != std::string::npos);
  const std::string up2 = e.last_upstream_body();
  CHECK(up2.find(R"({"role":"tool","tool_call_id":"call_mock_1","content":"18C and sunny"})") != std::string::npos);
  CHECK(up2.find(R"("arguments":"{\"city\":\"Paris\"}")") != std::string::npos);
}

TEST_CASE("OpenAI client, Anthropic upstream: plain, stream with tools, a tool round trip") {
  auto& e = env();
  auto r = e.chat(R"({"model":"claude-3-5-haiku","messages":[{"role":"system","content":"Be brief."},)"
                  R"({"role":"user","content":"mock:{\"cache_read_input_tokens\":30,\"cache_write_5m_tokens\":40,\"input_tokens\":21} Say hello"}]})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.body.find(R"("object":"chat.completion")") != std::string::npos);
  CHECK(r.body.find(R"("content":"Hello from the mock Anthropic upstream.")") != std::string::npos);
  CHECK(json_int(r.body, {"usage", "prompt_tokens"}) == 91);  // 21 + 30 read + 40 written
  CHECK(json_int(r.body, {"usage", "prompt_tokens_details", "cached_tokens"}) == 30);
  CHECK(json_int(r.body, {"usage", "completion_tokens"}) == 9);
  CHECK(json_int(r.body, {"usage", "total_tokens"}) == 100);
  const std::string up = e.last_upstream_body();
  CHECK(up.find(R"("system":[{"type":"text","text":"Be brief."}])") != std::string::npos);
  CHECK(up.find(R"("max_tokens":4096)") != std::string::npos);  // Anthropic requires it
  CHECK(e.last_upstream_header("x-api-key") == "sk-test");
  CHECK(e.last_upstream_header("anthropic-version") == "2023-06-01");

  auto s = e.chat(R"({"model":"claude-3-5-haiku","stream":true,"stream_options":{"include_usage":true},)"
                  R"("messages":[{"role":"user","content":"Weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]})");
  REQUIRE(s.status == 200);
  CHECK(s.header("content-type") == "text/event-stream");
  std::string args;
  int arg_chunks = 0;
  bool finish_tool_calls = false, done = false;
  int64_t prompt_tokens = -1;
  for (const auto& ev : sse_events(s.body)) {
    if (ev.data == "[DONE]") {
      done = true;
      continue;
    }
    simdjson::dom::parser p;
    simdjson::dom::element c;
    REQUIRE_MESSAGE(!p.parse(ev.data).get(c), ev.data);
    simdjson::dom::element u;
    if (!c["usage"].get(u) && u.is_object()) prompt_tokens = u["prompt_tokens"].get_int64().value();
    simdjson::dom::array choices;
    if (c["choices"].get_array().get(choices) || choices.size() == 0) continue;
    std::string_view a, fr;
    if (!choices.at(0)["delta"]["tool_calls"].at(0)["function"]["arguments"].get_string().get(a) && !a.empty()) {
      args += a;
      ++arg_chunks;
    }
    if (!choices.at(0)["finish_reason"].get_string().get(fr)) finish_tool_calls = fr == "tool_calls";
  }
  CHECK(done);
  CHECK(finish_tool_calls);
  CHECK(arg_chunks >= 3);
  CHECK(args == R"({"city":"Paris","unit":"celsius"})");
  CHECK(prompt_tokens == 25);

  auto back = e.chat(R"({"model":"claude-3-5-haiku","messages":[{"role":"user","content":"Weather?"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"toolu_mock_01","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"toolu_mock_01","content":"18C"}],
      "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]})");
  REQUIRE_MESSAGE(back.status == 200, back.body);
  CHECK(back.body.find("Tool result received: 18C") != std::string::npos);
  const std::string up2 = e.last_upstream_body();
  CHECK(up2.find(R"({"type":"tool_use","id":"toolu_mock_01","name":"get_weather","input":{"city":"Paris"}})") != std::string::npos);
  CHECK(up2.find(R"({"type":"tool_result","tool_use_id":"toolu_mock_01","content":"18C"})") != std::string::npos);
}

TEST_CASE("errors on Anthropic paths are Anthropic-shaped with the right status") {
  auto& e = env();
  struct Case { const char* what; std::string method, path, body; long status; const char* type; };
  const std::string big(70 * 1024, 'x');
  const std::string m = R"("max_tokens":5,)" + kHello;
  const std::vector<Case> cases = {
      {"malformed JSON", "POST", "/v1/messages", R"({"model":)", 400, "invalid_request_error"},
      {"not an object", "POST", "/v1/messages", "[1,2]", 400, "invalid_request_error"},
      {"missing max_tokens", "POST", "/v1/messages", R"({"model":"claude-x",)" + kHello + "}", 400, "invalid_request_error"},
      {"bad role", "POST", "/v1/messages", R"({"model":"claude-x","max_tokens":5,"messages":[{"role":"system","content":"x"}]})", 400, "invalid_request_error"},
      {"temperature out of range", "POST", "/v1/messages", R"({"model":"claude-x","temperature":1.5,)" + m + "}", 400, "invalid_request_error"},
      {"unknown model (no route)", "POST", "/v1/messages", R"({"model":"llama-unknown",)" + m + "}", 404, "not_found_error"},
      {"upstream unknown model", "POST", "/v1/messages", R"({"model":"missing",)" + m + "}", 404, "not_found_error"},
      {"anthropic upstream unknown model", "POST", "/v1/messages", R"({"model":"claude-no-such",)" + m + R"(,"mock":{"status":404}})", 404, "not_found_error"},
      {"cannot translate for OpenAI", "POST", "/v1/messages", R"({"model":"gpt-4o","top_k":3,)" + m + "}", 400, "invalid_request_error"},
      {"upstream rate limit", "POST", "/v1/messages", R"({"model":"claude-x",)" + m + R"(,"mock":{"status":429}})", 429, "rate_limit_error"},
      {"upstream overloaded", "POST", "/v1/messages", R"({"model":"claude-x",)" + m + R"(,"mock":{"status":529}})", 529, "overloaded_error"},
      {"gateway key rejected", "POST", "/v1/messages", R"({"model":"badant",)" + m + "}", 401, "authentication_error"},
      {"body over limit", "POST", "/v1/messages", R"({"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":")" + big + "\"}]}", 413, "request_too_large"},
      {"wrong method", "GET", "/v1/messages", "", 405, "invalid_request_error"},
      {"wrong method, bare path", "PUT", "/messages", "", 405, "invalid_request_error"},
      {"unknown path below messages", "POST", "/v1/messages/batches-nope", "{}", 404, "not_found_error"},
      {"count_tokens without model", "POST", "/v1/messages/count_tokens", R"({"messages":[]})", 400, "invalid_request_error"},
      {"count_tokens on an OpenAI model", "POST", "/v1/messages/count_tokens", R"({"model":"gpt-4o",)" + kHello + "}", 400, "invalid_request_error"},
      {"count_tokens unknown model", "POST", "/v1/messages/count_tokens", R"({"model":"nope",)" + kHello + "}", 404, "not_found_error"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    auto r = request(c.method, e.url + c.path, c.body, {"anthropic-version: 2023-06-01"});
    CHECK(r.status == c.status);
    CHECK(anthropic_error_type(r) == c.type);
    CHECK(!r.header("x-request-id").empty());
  }
  // An Anthropic SDK on a path that is not the Messages API still gets its own shape.
  auto other = request("GET", e.url + "/v1/nothing", "", {"anthropic-version: 2023-06-01"});
  CHECK(other.status == 404);
  CHECK(anthropic_error_type(other) == "not_found_error");
  // OpenAI paths keep the OpenAI shape for the same failures.
  auto openai = e.chat(R"({"model":"claude-x","n":2,"messages":[{"role":"user","content":"hi"}]})");
  CHECK(openai.status == 400);
  CHECK(openai.body.find(R"("param":"n")") != std::string::npos);
  CHECK(openai.body.find("upstream") == std::string::npos);  // the gateway's own refusal, not "upstream ... returned"
  auto openai_auth = e.chat(R"({"model":"badant","messages":[{"role":"user","content":"hi"}]})");
  CHECK(openai_auth.status == 401);
  CHECK(openai_auth.body.find(R"("type":"authentication_error")") != std::string::npos);
}

TEST_CASE("a request OpenAI cannot express still passes through when every target is Anthropic") {
  auto& e = env();
  const std::string body = R"({"model":"claude-x","max_tokens":2000,"top_k":5,"thinking":{"type":"enabled","budget_tokens":1024},)"
                           R"("mcp_servers":[{"type":"url","url":"https://mcp.example","name":"x"}],)" + kHello + "}";
  auto r = e.messages(body);
  CHECK_MESSAGE(r.status == 200, r.body);
  CHECK(e.last_upstream_body() == body);
  // With an OpenAI fallback in the route the translation is needed, so it is a 400.
  auto mixed = e.messages(R"({"model":"mixed","max_tokens":5,"top_k":5,)" + kHello + "}");
  CHECK(mixed.status == 400);
  CHECK(anthropic_error_type(mixed) == "invalid_request_error");
}

TEST_CASE("count_tokens is forwarded to the Anthropic provider") {
  auto& e = env();
  auto r = request("POST", e.url + "/v1/messages/count_tokens",
                   R"({"model":"sonnet","system":"Be very brief.",)" + kHello + "}", {"anthropic-version: 2023-06-01"});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(json_int(r.body, {"input_tokens"}) == 5);  // the mock counts words: 3 + 2
  CHECK(e.last_upstream_body().find(R"("model":"claude-sonnet-4-5")") != std::string::npos);
  CHECK(e.last_upstream_header("x-api-key") == "sk-test");
  CHECK(r.header("x-frugal-provider") == "claude");
}

TEST_CASE("streams the upstream breaks end with an error event, never a clean message_stop") {
  auto& e = env();
  // Pass-through, connection cut mid-event.
  auto cut = e.messages(R"({"model":"claude-x","max_tokens":50,"stream":true,)" + kHello + R"(,"mock":{"cut_after":5}})");
  CHECK(cut.status == 200);
  auto n = names(sse_events(cut.body));
  REQUIRE(!n.empty());
  CHECK(n.back() == "error");
  CHECK(std::count(n.begin(), n.end(), "message_stop") == 0);
  CHECK(cut.body.find("interrupted") != std::string::npos);

  // Pass-through, the upstream's own error event is relayed once and nothing is added.
  auto err = e.messages(R"({"model":"claude-x","max_tokens":50,"stream":true,)" + kHello +
                        R"(,"mock":{"fail_after_events":4,"error_type":"overloaded_error"}})");
  n = names(sse_events(err.body));
  CHECK(n.back() == "error");
  CHECK(std::count(n.begin(), n.end(), "error") == 1);
  CHECK(err.body.find("overloaded_error") != std::string::npos);

  // Translated (OpenAI-compatible upstream cut mid-chunk).
  auto tcut = e.messages(R"({"model":"gpt-4o-mini","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"mock:{\"cut_after\":2} hi"}]})");
  n = names(sse_events(tcut.body));
  REQUIRE(!n.empty());
  CHECK(n.front() == "message_start");
  CHECK(n.back() == "error");
  CHECK(std::count(n.begin(), n.end(), "message_stop") == 0);

  // OpenAI client, Anthropic upstream cut: an OpenAI error event, no [DONE].
  auto ocut = e.chat(R"({"model":"claude-x","stream":true,"messages":[{"role":"user","content":"mock:{\"cut_after\":5} hi"}]})");
  CHECK(ocut.body.find("[DONE]") == std::string::npos);
  CHECK(ocut.body.find(R"(data: {"error":{"message":"The upstream stream was interrupted)") != std::string::npos);
}

TEST_CASE("a client that hangs up mid-stream: upstream aborted, usage seen so far handed off") {
  auto& e = env();
  const int64_t before = e.mock_stat("aborted");
  int pieces = 0;
  request("POST", e.url + "/v1/messages",
          R"({"model":"claude-x","max_tokens":50,"stream":true,)" + kHello +
              R"(,"mock":{"chunk_delay_ms":100,"chunk_size":2,"input_tokens":40,"cache_read_input_tokens":7}})",
          {"anthropic-version: 2023-06-01", "x-request-id: ait-abort-1"}, [&](const std::string&) {
            return ++pieces < 3;  // hang up after a few events
          });
  const std::string line = e.log_line("ait-abort-1", "finish");
  CHECK_MESSAGE(line.find("end=client_gone dialect=anthropic usage input=47 cached=7 ") != std::string::npos, line);
  CHECK_MESSAGE(line.find(" output=1 reported=1") != std::string::npos, line);  // message_start's count
  const auto t0 = std::chrono::steady_clock::now();
  while (e.mock_stat("aborted") == before && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(e.mock_stat("aborted") > before);

  // Translated stream (Anthropic client, OpenAI upstream): the hand-off still happens.
  request("POST", e.url + "/v1/messages",
          R"({"model":"gpt-4o-mini","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"mock:{\"chunks\":30,\"chunk_delay_ms\":100} hi"}]})",
          {"x-request-id: ait-abort-2"}, [&](const std::string&) { return false; });
  CHECK(e.log_line("ait-abort-2", "finish").find("end=client_gone dialect=anthropic") != std::string::npos);

  // OpenAI client, Anthropic upstream: the canonical bytes carry usage only at the end,
  // but the provider's call hands over what message_start reported.
  request("POST", e.url + "/v1/chat/completions",
          R"({"model":"claude-x","stream":true,"messages":[{"role":"user","content":"mock:{\"chunk_delay_ms\":100,\"chunk_size\":2,\"input_tokens\":40,\"cache_read_input_tokens\":7} hi"}]})",
          {"x-request-id: ait-abort-3"}, [&](const std::string&) { return false; });
  const std::string openai_line = e.log_line("ait-abort-3", "finish");
  CHECK_MESSAGE(openai_line.find("end=client_gone dialect=openai usage input=47 cached=7 ") != std::string::npos,
                openai_line);
}

TEST_CASE("the exact cache serves translated requests to Anthropic clients, pass-through is not cached") {
  auto& e = env();
  // Anthropic client, OpenAI-compatible upstream, temperature 0: cacheable canonical bytes.
  const std::string body = R"({"model":"gpt-4o-mini","max_tokens":20,"temperature":0,"messages":[{"role":"user","content":"cache me please"}]})";
  auto first = e.messages(body);
  REQUIRE_MESSAGE(first.status == 200, first.body);
  CHECK(first.header("x-frugal-cache") == "miss");
  const int64_t chats = e.mock_stat("chat");
  auto again = e.messages(body);
  CHECK(again.status == 200);
  CHECK(again.header("x-frugal-cache") == "hit");
  CHECK(e.mock_stat("chat") == chats);
  CHECK(again.body.find(R"("type":"message")") != std::string::npos);
  CHECK(again.body.find(R"("text":"Hello from the mock upstream.")") != std::string::npos);
  // The same answer replayed as a stream, in Anthropic's event sequence.
  auto streamed = e.messages(body.substr(0, body.size() - 1) + R"(,"stream":true})");
  CHECK(streamed.header("x-frugal-cache") == "hit");
  const auto n = names(sse_events(streamed.body));
  REQUIRE(n.size() > 4);
  CHECK(n.front() == "message_start");
  CHECK(n.back() == "message_stop");
  CHECK(e.mock_stat("chat") == chats);

  // Anthropic client, Anthropic provider: the provider's own bytes, never stored.
  const std::string pass = R"({"model":"claude-x","max_tokens":20,"temperature":0,"messages":[{"role":"user","content":"cache me please"}]})";
  const int64_t msgs = e.mock_stat("messages");
  CHECK(e.messages(pass).header("x-frugal-cache") == "bypass");
  CHECK(e.messages(pass).status == 200);
  CHECK(e.mock_stat("messages") == msgs + 2);
}

TEST_CASE("auto_prompt_cache: a route that enables it gets cache_control on its long stable prefix") {
  auto& e = env();
  const std::string system(6000, 's');  // ~1500 tokens by the chars/4 estimate, over the 1024 minimum
  const std::string body = R"(,"max_tokens":50,"messages":[{"role":"system","content":")" + system +
                           R"("},{"role":"user","content":"q1"},{"role":"assistant","content":"a1"},)"
                           R"({"role":"user","content":"q2"}]})";
  auto r = e.chat(R"({"model":"sonnet")" + body);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::string sent = e.last_upstream_body();
  CHECK(sent.find(R"("cache_control":{"type":"ephemeral"})") != std::string::npos);
  // The same request on a route without it: no breakpoints added.
  auto r2 = e.chat(R"({"model":"claude-sonnet-4-5")" + body);
  REQUIRE(r2.status == 200);
  CHECK(e.last_upstream_body().find("cache_control") == std::string::npos);
}

TEST_CASE("structured outputs: an OpenAI json_schema request to Claude answers in content, plain and streamed") {
  auto& e = env();
  const std::string format =
      R"("response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":)"
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}}})";
  const std::string user = R"("messages":[{"role":"user","content":"mock:{\"tool_input\":{\"name\":\"Ada\",\"age\":36}} Who?"}])";
  auto r = e.chat(R"({"model":"claude-sonnet-4-5",)" + user + "," + format + "}");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  simdjson::dom::parser p;
  simdjson::dom::element msg = p.parse(r.body)["choices"].at(0)["message"].value();
  CHECK(std::string_view(msg["content"].get_string().value()) == R"({"name":"Ada","age":36})");
  CHECK(msg["tool_calls"].error() == simdjson::NO_SUCH_FIELD);
  CHECK(std::string_view(p.parse(r.body)["choices"].at(0)["finish_reason"].get_string().value()) == "stop");
  const std::string up = e.last_upstream_body();
  CHECK(up.find(R"("tool_choice":{"type":"tool","name":"person"})") != std::string::npos);
  CHECK(up.find(R"("name":"person","description":)") != std::string::npos);
  CHECK(up.find("response_format") == std::string::npos);

  auto s = e.chat(R"({"model":"claude-sonnet-4-5","stream":true,)" + user + "," + format + "}");
  REQUIRE_MESSAGE(s.status == 200, s.body);
  std::string content, finish;
  int content_chunks = 0;
  bool done = false;
  for (const auto& ev : sse_events(s.body)) {
    if (ev.data == "[DONE]") {
      done = true;
      continue;
    }
    simdjson::dom::parser cp;
    simdjson::dom::element c;
    REQUIRE_MESSAGE(!cp.parse(ev.data).get(c), ev.data);
    simdjson::dom::array choices;
    if (c["choices"].get_array().get(choices) || choices.size() == 0) continue;
    std::string_view t;
    if (!choices.at(0)["delta"]["content"].get_string().get(t) && !t.empty()) {
      content += t;
      ++content_chunks;
    }
    CHECK(choices.at(0)["delta"]["tool_calls"].error() == simdjson::NO_SUCH_FIELD);
    if (!choices.at(0)["finish_reason"].get_string().get(t)) finish = t;
  }
  CHECK(done);
  CHECK(content == R"({"name":"Ada","age":36})");
  CHECK(content_chunks >= 2);  // the tool input arrives in pieces and is forwarded as it comes
  CHECK(finish == "stop");

  // json_object: a permissive object tool.
  auto o = e.chat(R"({"model":"claude-sonnet-4-5",)" + user + R"(,"response_format":{"type":"json_object"}})");
  REQUIRE_MESSAGE(o.status == 200, o.body);
  CHECK(o.body.find(R"("content":"{\"name\":\"Ada\",\"age\":36}")") != std::string::npos);
  CHECK(e.last_upstream_body().find(R"("tool_choice":{"type":"tool","name":"json_object"})") != std::string::npos);

  // A schema Anthropic cannot take as a tool input is the client's 400, in OpenAI shape.
  auto bad = e.chat(R"({"model":"claude-sonnet-4-5",)" + user +
                    R"(,"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"array"}}}})");
  CHECK(bad.status == 400);
  CHECK(bad.body.find(R"("param":"response_format.json_schema.schema")") != std::string::npos);
}

TEST_CASE("structured outputs: an Anthropic request forcing a tool, sent to OpenAI, gets tool_use back") {
  auto& e = env();
  const std::string body =
      R"({"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"Record it."}],)"
      R"("tools":[{"name":"other","input_schema":{"type":"object"}},{"name":"record","input_schema":{"type":"object"}}],)"
      R"("tool_choice":{"type":"tool","name":"record"})";
  auto r = e.messages(body + "}");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  simdjson::dom::parser p;
  simdjson::dom::element m = p.parse(r.body).value();
  CHECK(std::string_view(m["stop_reason"].get_string().value()) == "tool_use");
  simdjson::dom::element block = m["content"].at(0).value();
  CHECK(std::string_view(block["type"].get_string().value()) == "tool_use");
  CHECK(std::string_view(block["name"].get_string().value()) == "record");
  CHECK(std::string_view(block["input"]["city"].get_string().value()) == "Paris");
  CHECK(e.last_upstream_body().find(R"("tool_choice":{"type":"function","function":{"name":"record"}})") !=
        std::string::npos);

  auto s = e.messages(body + R"(,"stream":true})");
  REQUIRE_MESSAGE(s.status == 200, s.body);
  CHECK(s.body.find(R"("content_block":{"type":"tool_use","id":"call_mock_1","name":"record")") != std::string::npos);
  CHECK(s.body.find(R"("stop_reason":"tool_use")") != std::string::npos);
  CHECK(s.body.find("event: message_stop") != std::string::npos);
}

TEST_CASE("SIGTERM stops the gateway gracefully") {
  CHECK(env().gw->stop(SIGTERM) == 0);
}
