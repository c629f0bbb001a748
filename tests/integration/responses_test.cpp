// POST /v1/responses (the OpenAI Responses API) through the `frugal` binary, over
// loopback, against the C++ mock upstream speaking both protocols: plain and streamed
// answers from an OpenAI-compatible and an Anthropic provider, a function-tool round
// trip, the exact cache, a cascade, the ledger row's dialect, and errors in OpenAI's
// shape.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/gateway_env.h"
#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::request;
using frugal::test::Response;

namespace {

struct Env : frugal::test::GatewayEnv {
  Env() : GatewayEnv("resp-it") {
    start_mock({"--threads", "2"});
    write("policy.yaml", R"(request_types:
  - name: escalating
    match: { header: { x-frugal-request-type: escalating } }
  - name: tagged
    match: { metadata: { feature: tagged } }
  - name: cached
    match: { dialect: responses, header: { x-frugal-request-type: cached } }
  - name: chat
routes:
  escalating:
    reference_model: tier-large
    cascade:
      - model: tier-small
        accept: { non_empty: true }
      - model: tier-large
  cached:
    reference_model: tier-large
    cascade:
      - model: tier-small
    cache: { ttl: 10m }
prices:
  tier-small: { input: 0.10, output: 0.40 }
  tier-large: { input: 10.00, output: 30.00 }
)");
    write("frugal.yaml", "data_dir: " + (dir / "data").string() + R"(
policy: policy.yaml
server:
  listen: ["127.0.0.1:0"]
  threads: 2
providers:
  mock:
    kind: openai
    base_url: )" + mock_url + R"(/v1
    retry: { max_attempts: 1 }
  claude:
    kind: anthropic
    base_url: )" + mock_url + R"(
    api_key: sk-test
    retry: { max_attempts: 1 }
models:
  sonnet: claude/claude-sonnet-4-5
passthrough:
  - { prefix: "", provider: mock }
)");
    start_gateway();
  }
  Response responses(const std::string& body, std::vector<std::string> headers = {}) {
    gw->output();  // drain the log so the gateway never blocks on a full pipe
    return request("POST", url + "/v1/responses", body, std::move(headers));
  }
  std::string last_upstream_body() { return request("GET", mock_url + "/mock/last_request").body; }
  int64_t mock_stat(const char* key) {
    simdjson::dom::parser p;
    return p.parse(request("GET", mock_url + "/mock/stats").body)[key].get_int64().value();
  }
  // The ledger row of request `id` (minified JSON), waiting up to 20 s for it.
  std::string ledger_row(const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      auto r = request("GET", admin_url + "/v1/frugal/ledger?from=0&limit=10000");
      REQUIRE_MESSAGE(r.status == 200, r.body);
      simdjson::dom::parser p;
      const simdjson::dom::array rows = p.parse(r.body)["rows"].get_array().value();
      for (simdjson::dom::element row : rows) {
        std::string_view rid;
        if (!row["id"].get_string().get(rid) && rid == id) return simdjson::minify(row);
      }
      if (std::chrono::steady_clock::now() > deadline) return {};
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
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

// A string at a JSON pointer ("/output/0/content/0/text"), or "<absent>".
std::string str(const std::string& json, const char* pointer) {
  simdjson::dom::parser p;
  std::string_view v;
  if (p.parse(json).at_pointer(pointer).get_string().get(v)) return "<absent>";
  return std::string(v);
}

int64_t num(const std::string& json, const char* pointer) {
  simdjson::dom::parser p;
  int64_t v = -1;
  if (p.parse(json).at_pointer(pointer).get_int64().get(v)) return -1;
  return v;
}

// The concatenated output_text deltas of a Responses stream, and whether its events
// carry consecutive sequence numbers from 0.
std::string streamed_text(const std::vector<Event>& evs, bool& sequenced) {
  std::string text;
  sequenced = true;
  for (size_t i = 0; i < evs.size(); ++i) {
    if (num(evs[i].data, "/sequence_number") != static_cast<int64_t>(i)) sequenced = false;
    if (evs[i].name == "response.output_text.delta") text += str(evs[i].data, "/delta");
  }
  return text;
}

// Asserts an OpenAI-shaped error body and returns error.param ("" for null).
std::string openai_error_param(const Response& r) {
  simdjson::dom::parser p;
  simdjson::dom::element root;
  REQUIRE_MESSAGE(!p.parse(r.body).get(root), r.body);
  std::string_view msg, param;
  CHECK_MESSAGE(!root["error"]["message"].get_string().get(msg), r.body);
  CHECK(!msg.empty());
  if (root["error"]["param"].get_string().get(param)) param = {};
  return std::string(param);
}

}  // namespace

TEST_CASE("responses: a plain request is translated to chat completions and answered as a Response") {
  auto& e = env();
  auto r = e.responses(R"({"model":"gpt-4o-mini","input":"Say hello","instructions":"Be brief","max_output_tokens":40})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(str(r.body, "/object") == "response");
  CHECK(str(r.body, "/status") == "completed");
  CHECK(str(r.body, "/id").rfind("resp_", 0) == 0);
  CHECK(str(r.body, "/output/0/type") == "message");
  CHECK(str(r.body, "/output/0/content/0/type") == "output_text");
  CHECK(str(r.body, "/output/0/content/0/text") == "Hello from the mock upstream.");
  CHECK(str(r.body, "/instructions") == "Be brief");
  CHECK(num(r.body, "/usage/input_tokens") == 12);
  CHECK(num(r.body, "/usage/output_tokens") == 7);
  CHECK(num(r.body, "/usage/total_tokens") == 19);
  CHECK(num(r.body, "/usage/input_tokens_details/cached_tokens") == 0);
  // The upstream saw a chat-completions request.
  const std::string up = e.last_upstream_body();
  CHECK(str(up, "/messages/0/role") == "system");
  CHECK(str(up, "/messages/1/content") == "Say hello");
  CHECK(num(up, "/max_completion_tokens") == 40);
  CHECK(up.find("\"input\"") == std::string::npos);
}

TEST_CASE("responses: a stream is the Responses event sequence, completed with usage and cost trailers") {
  auto& e = env();
  auto r = e.responses(R"({"model":"gpt-4o-mini","input":"Say hello","stream":true})");
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type").find("text/event-stream") != std::string::npos);
  const auto evs = sse_events(r.body);
  REQUIRE(evs.size() >= 10);
  CHECK(evs[0].name == "response.created");
  CHECK(evs[1].name == "response.in_progress");
  CHECK(evs[2].name == "response.output_item.added");
  CHECK(evs[3].name == "response.content_part.added");
  CHECK(evs.back().name == "response.completed");
  bool sequenced = false;
  CHECK(streamed_text(evs, sequenced) == "Hello from the mock upstream.");
  CHECK(sequenced);
  CHECK(str(evs.back().data, "/response/output/0/content/0/text") == "Hello from the mock upstream.");
  CHECK(num(evs.back().data, "/response/usage/input_tokens") == 12);
  CHECK(num(evs.back().data, "/response/usage/output_tokens") == 7);
  CHECK(e.last_upstream_body().find(R"("stream_options":{"include_usage":true})") != std::string::npos);
  CHECK_FALSE(r.last_header("x-frugal-cost-usd").empty());
}

TEST_CASE("responses: a function tool round trip, plain and streamed") {
  auto& e = env();
  const std::string tools =
      R"("tools":[{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}])";
  auto call = e.responses(R"({"model":"gpt-4o-mini","input":"Weather in Paris?",)" + tools + "}");
  REQUIRE_MESSAGE(call.status == 200, call.body);
  CHECK(str(call.body, "/output/0/type") == "function_call");
  CHECK(str(call.body, "/output/0/name") == "get_weather");
  CHECK(str(call.body, "/output/0/arguments") == R"({"city":"Paris","unit":"celsius"})");
  const std::string call_id = str(call.body, "/output/0/call_id");
  CHECK(call_id == "call_mock_1");
  CHECK(str(e.last_upstream_body(), "/tools/0/function/name") == "get_weather");

  auto answer = e.responses(R"({"model":"gpt-4o-mini",)" + tools + R"(,"input":[
      {"role":"user","content":"Weather in Paris?"},
      {"type":"function_call","call_id":"call_mock_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
      {"type":"function_call_output","call_id":"call_mock_1","output":"18C and sunny"}]})");
  REQUIRE_MESSAGE(answer.status == 200, answer.body);
  CHECK(str(answer.body, "/output/0/content/0/text") == "Tool result received: 18C and sunny");
  const std::string up = e.last_upstream_body();
  CHECK(str(up, "/messages/1/tool_calls/0/id") == "call_mock_1");
  CHECK(str(up, "/messages/2/role") == "tool");

  auto streamed = e.responses(R"({"model":"gpt-4o-mini","input":"Weather in Paris?","stream":true,)" + tools + "}");
  REQUIRE(streamed.status == 200);
  const auto evs = sse_events(streamed.body);
  std::string args;
  int deltas = 0;
  for (const auto& ev : evs) {
    if (ev.name == "response.function_call_arguments.delta") {
      args += str(ev.data, "/delta");
      ++deltas;
    }
    if (ev.name == "response.function_call_arguments.done") CHECK(str(ev.data, "/arguments") == R"({"city":"Paris","unit":"celsius"})");
  }
  CHECK(deltas > 1);
  CHECK(args == R"({"city":"Paris","unit":"celsius"})");
  REQUIRE(!evs.empty());
  CHECK(evs.back().name == "response.completed");
  CHECK(str(evs.back().data, "/response/output/0/call_id") == "call_mock_1");
}

TEST_CASE("responses: an Anthropic provider answers through the chat translation") {
  auto& e = env();
  const int64_t before = e.mock_stat("messages");
  auto r = e.responses(R"({"model":"sonnet","input":"Say hello","max_output_tokens":64})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(str(r.body, "/output/0/content/0/text") == "Hello from the mock Anthropic upstream.");
  CHECK(num(r.body, "/usage/input_tokens") == 25);
  CHECK(num(r.body, "/usage/output_tokens") == 9);
  CHECK(str(r.body, "/model") == "claude-sonnet-4-5");
  CHECK(e.mock_stat("messages") == before + 1);
  CHECK(num(e.last_upstream_body(), "/max_tokens") == 64);

  auto s = e.responses(R"({"model":"sonnet","input":"Say hello","max_output_tokens":64,"stream":true})");
  REQUIRE(s.status == 200);
  const auto evs = sse_events(s.body);
  bool sequenced = false;
  CHECK(streamed_text(evs, sequenced) == "Hello from the mock Anthropic upstream.");
  CHECK(sequenced);
  REQUIRE(!evs.empty());
  CHECK(evs.back().name == "response.completed");
  CHECK(num(evs.back().data, "/response/usage/output_tokens") == 9);

  // Claude's text and tool_use come back as a message item and a function_call item.
  auto t = e.responses(R"({"model":"sonnet","input":"Weather?","max_output_tokens":64,"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{}}}]})");
  REQUIRE_MESSAGE(t.status == 200, t.body);
  CHECK(str(t.body, "/output/0/type") == "message");
  CHECK(str(t.body, "/output/1/type") == "function_call");
  CHECK(str(t.body, "/output/1/name") == "get_weather");
  CHECK(str(t.body, "/output/1/arguments") == R"({"city":"Paris","unit":"celsius"})");
}

TEST_CASE("responses: routed by dialect, exactly cached (plain and replayed as a stream) and booked as responses") {
  auto& e = env();
  const std::string body = R"({"model":"gpt-4o-mini","temperature":0,"input":"cache me )" + std::to_string(getpid()) + R"("})";
  auto first = e.responses(body, {"x-frugal-request-type: cached", "x-request-id: resp-cache-1"});
  REQUIRE_MESSAGE(first.status == 200, first.body);
  CHECK(first.header("x-frugal-route") == "cached");
  CHECK(first.header("x-frugal-cache") == "miss");
  CHECK(first.header("x-frugal-model") == "tier-small");
  const int64_t upstream = e.mock_stat("chat");

  auto second = e.responses(body, {"x-frugal-request-type: cached"});
  REQUIRE(second.status == 200);
  CHECK(second.header("x-frugal-cache") == "hit");
  CHECK(str(second.body, "/output/0/content/0/text") == str(first.body, "/output/0/content/0/text"));
  CHECK(num(second.body, "/usage/output_tokens") == 7);

  std::string streamed_body = body;
  streamed_body.insert(streamed_body.size() - 1, R"(,"stream":true)");
  auto replay = e.responses(streamed_body, {"x-frugal-request-type: cached"});
  REQUIRE(replay.status == 200);
  CHECK(replay.header("x-frugal-cache") == "hit");
  const auto evs = sse_events(replay.body);
  bool sequenced = false;
  CHECK(streamed_text(evs, sequenced) == "Hello from the mock upstream.");
  CHECK(sequenced);
  REQUIRE(!evs.empty());
  CHECK(evs.back().name == "response.completed");
  CHECK(e.mock_stat("chat") == upstream);  // neither went upstream

  // The dialect matcher does not catch chat completions.
  auto chat = request("POST", e.url + "/v1/chat/completions",
                      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]})",
                      {"x-frugal-request-type: cached"});
  CHECK(chat.header("x-frugal-request-type") == "chat");

  const std::string row = e.ledger_row("resp-cache-1");
  REQUIRE(!row.empty());
  CHECK(str(row, "/dialect") == "responses");
  CHECK(str(row, "/route") == "cached");
}

TEST_CASE("responses: metadata reaches policy matchers and is echoed, not sent upstream") {
  auto& e = env();
  auto r = e.responses(R"({"model":"gpt-4o-mini","input":"Say hello","metadata":{"feature":"tagged"}})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.header("x-frugal-request-type") == "tagged");
  CHECK(str(r.body, "/metadata/feature") == "tagged");
  CHECK(e.last_upstream_body().find("metadata") == std::string::npos);
}

TEST_CASE("responses: a rejected cheap tier escalates in a cascade") {
  auto& e = env();
  auto r = e.responses(R"({"model":"gpt-4o-mini","input":"mock:{\"models\":{\"tier-small\":{\"content\":\"\"}}} Say hello"})",
                       {"x-frugal-request-type: escalating"});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.header("x-frugal-tier") == "2");
  CHECK(r.header("x-frugal-model") == "tier-large");
  CHECK(str(r.body, "/output/0/content/0/text") == "Hello from the mock upstream.");
  CHECK(str(r.body, "/model") == "tier-large");
}

TEST_CASE("responses: bad input is an OpenAI-shaped error with the right status") {
  auto& e = env();
  auto bad_json = e.responses(R"({"model":"gpt-4o-mini","input":)");
  CHECK(bad_json.status == 400);
  CHECK(openai_error_param(bad_json).empty());
  auto no_model = e.responses(R"({"input":"x"})");
  CHECK(no_model.status == 400);
  CHECK(openai_error_param(no_model) == "model");
  auto bad_item = e.responses(R"({"model":"gpt-4o-mini","input":[{"type":"web_search_call","id":"x"}]})");
  CHECK(bad_item.status == 400);
  CHECK(openai_error_param(bad_item) == "input[0].type");
  auto store = e.responses(R"({"model":"gpt-4o-mini","input":"x","store":true})");
  CHECK(store.status == 400);
  CHECK(openai_error_param(store) == "store");
  auto prev = e.responses(R"({"model":"gpt-4o-mini","input":"x","previous_response_id":"resp_1"})");
  CHECK(prev.status == 400);
  CHECK(openai_error_param(prev) == "previous_response_id");
  auto unknown = e.responses(R"({"model":"no-such-model","input":"x"})");
  CHECK(unknown.status == 404);
  CHECK(openai_error_param(unknown).empty());
  auto get = request("GET", e.url + "/v1/responses");
  CHECK(get.status == 405);
  // The gateway keeps serving.
  CHECK(e.responses(R"({"model":"gpt-4o-mini","input":"still there?"})").status == 200);
}

TEST_CASE("responses: a stream the upstream cuts ends with an error event, never response.completed") {
  auto& e = env();
  auto r = e.responses(R"({"model":"gpt-4o-mini","stream":true,"input":"mock:{\"chunks\":6,\"cut_after\":3} Say hello"})");
  REQUIRE(r.status == 200);
  const auto evs = sse_events(r.body);
  REQUIRE(!evs.empty());
  CHECK(evs.back().name == "error");
  CHECK(str(evs.back().data, "/message").find("interrupted") != std::string::npos);
  for (const auto& ev : evs) CHECK(ev.name != "response.completed");
  CHECK(e.responses(R"({"model":"gpt-4o-mini","input":"after the cut"})").status == 200);
}
