// Constrained decoding through the `frugal` binary: an engine-backed model (the llama-2
// fixture, random weights) answers a response_format json_schema request with JSON that
// matches the schema, and a named tool with an OpenAI tool call — and, through the
// gateway's Anthropic dialect, with a tool_use block (plain and streamed).
#include <doctest/doctest.h>
#include <simdjson.h>

#include <filesystem>
#include <fstream>

#include "tests/support/completion_text.h"
#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::content_of;
using frugal::test::request;
using frugal::test::Response;

namespace {

const std::string kFixture = std::string(FRUGAL_FIXTURES_DIR) + "/llama-2-tiny-random.gguf";

struct Env {
  std::unique_ptr<Child> gw;
  std::string url;
  std::filesystem::path dir;

  Env() {
    dir = std::filesystem::temp_directory_path() / ("frugal-engine-tools-it-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "frugal.yaml") << "data_dir: " + (dir / "data").string() + R"(
server:
  listen: ["127.0.0.1:0"]
  threads: 2
cache: { enabled: false }
providers:
  local:
    kind: engine
    model: )" + kFixture + R"(
    threads: 1
    kv_memory: 16MiB
    context_length: 1024
)";
    gw = std::make_unique<Child>(
        std::vector<std::string>{FRUGAL_BIN, "serve", "--config", (dir / "frugal.yaml").string()});
    url = "http://127.0.0.1:" + gw->wait_for("listening on 127\\.0\\.0\\.1:(\\d+)", 30'000);
  }
  ~Env() {
    gw.reset();
    std::filesystem::remove_all(dir);
  }
};

Env& env() {
  static Env e;
  return e;
}

const std::string kTool =
    R"({"type":"function","function":{"name":"get_weather","description":"Current weather",)"
    R"("parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":10},)"
    R"("days":{"type":"integer"}},"required":["city","days"],"additionalProperties":false}}})";

void check_weather_args(simdjson::dom::element a) {
  std::string_view city;
  CHECK(a["city"].get_string().get(city) == simdjson::SUCCESS);
  CHECK(a["days"].is_int64());
  simdjson::dom::object o;
  REQUIRE(a.get_object().get(o) == simdjson::SUCCESS);
  CHECK(o.size() == 2);
}

}  // namespace

TEST_CASE("engine model over HTTP: response_format json_schema gives JSON that matches the schema") {
  const Response r = request(
      "POST", env().url + "/v1/chat/completions",
      R"({"model":"local/llama-2-tiny-random","messages":[{"role":"user","content":"A colour as JSON"}],)"
      R"("temperature":0,"max_tokens":40,"response_format":{"type":"json_schema","json_schema":{"name":"c",)"
      R"("strict":true,"schema":{"type":"object","properties":{"name":{"type":"string","maxLength":8},)"
      R"("rgb":{"type":"array","items":{"type":"integer"},"minItems":3,"maxItems":3}},)"
      R"("required":["name","rgb"],"additionalProperties":false}}}})",
      {}, nullptr, 60'000);
  REQUIRE(r.status == 200);
  const std::string content = content_of(r);
  CAPTURE(content);
  simdjson::dom::parser p;
  simdjson::dom::element v;
  REQUIRE(p.parse(content).get(v) == simdjson::SUCCESS);
  std::string_view name;
  CHECK(v["name"].get_string().get(name) == simdjson::SUCCESS);
  simdjson::dom::array rgb;
  REQUIRE(v["rgb"].get_array().get(rgb) == simdjson::SUCCESS);
  CHECK(rgb.size() == 3);
  for (auto x : rgb) CHECK(x.is_int64());

  // A schema outside the subset is a 400 in OpenAI's shape.
  const Response bad = request(
      "POST", env().url + "/v1/chat/completions",
      R"({"model":"local/llama-2-tiny-random","messages":[{"role":"user","content":"x"}],)"
      R"("response_format":{"type":"json_schema","json_schema":{"name":"c","schema":{"type":"integer","minimum":1}}}})",
      {}, nullptr, 60'000);
  CHECK(bad.status == 400);
  simdjson::dom::parser bp;
  simdjson::dom::element e;
  REQUIRE(bp.parse(bad.body).get(e) == simdjson::SUCCESS);
  std::string_view param, message;
  CHECK(e["error"]["param"].get_string().get(param) == simdjson::SUCCESS);
  CHECK(param == "response_format.json_schema.schema");
  CHECK(e["error"]["message"].get_string().get(message) == simdjson::SUCCESS);
  CHECK(message.find("minimum") != std::string_view::npos);
}

TEST_CASE("engine model over HTTP: a named tool comes back as an OpenAI tool call") {
  const Response r = request(
      "POST", env().url + "/v1/chat/completions",
      R"({"model":"local/llama-2-tiny-random","messages":[{"role":"user","content":"Weather in Oslo?"}],)"
      R"("temperature":0,"max_tokens":50,"tools":[)" + kTool +
          R"(],"tool_choice":{"type":"function","function":{"name":"get_weather"}}})",
      {}, nullptr, 60'000);
  REQUIRE(r.status == 200);
  CAPTURE(r.body);
  simdjson::dom::parser p;
  simdjson::dom::element b;
  REQUIRE(p.parse(r.body).get(b) == simdjson::SUCCESS);
  std::string_view finish, name, args;
  CHECK(b.at_pointer("/choices/0/finish_reason").get_string().get(finish) == simdjson::SUCCESS);
  CHECK(finish == "tool_calls");
  CHECK(b.at_pointer("/choices/0/message/tool_calls/0/function/name").get_string().get(name) == simdjson::SUCCESS);
  CHECK(name == "get_weather");
  REQUIRE(b.at_pointer("/choices/0/message/tool_calls/0/function/arguments").get_string().get(args) ==
          simdjson::SUCCESS);
  simdjson::dom::parser ap;
  simdjson::dom::element a;
  REQUIRE(ap.parse(args).get(a) == simdjson::SUCCESS);
  check_weather_args(a);
}

TEST_CASE("engine model over HTTP: the Anthropic dialect gets a tool_use block, plain and streamed") {
  const std::string body =
      R"({"model":"local/llama-2-tiny-random","max_tokens":50,"temperature":0,)"
      R"("messages":[{"role":"user","content":"Weather in Oslo?"}],)"
      R"("tools":[{"name":"get_weather","description":"Current weather","input_schema":{"type":"object",)"
      R"("properties":{"city":{"type":"string","maxLength":10},"days":{"type":"integer"}},)"
      R"("required":["city","days"],"additionalProperties":false}}],)"
      R"("tool_choice":{"type":"tool","name":"get_weather"})";
  const std::vector<std::string> headers = {"anthropic-version: 2023-06-01", "content-type: application/json"};
  const Response r = request("POST", env().url + "/v1/messages", body + "}", headers, nullptr, 60'000);
  REQUIRE(r.status == 200);
  CAPTURE(r.body);
  simdjson::dom::parser p;
  simdjson::dom::element m;
  REQUIRE(p.parse(r.body).get(m) == simdjson::SUCCESS);
  std::string_view stop, type, name, id;
  CHECK(m["stop_reason"].get_string().get(stop) == simdjson::SUCCESS);
  CHECK(stop == "tool_use");
  simdjson::dom::element block;
  bool found = false;
  for (auto c : simdjson::dom::array(m["content"].get_array().value_unsafe())) {
    if (c["type"].get_string().get(type) || type != "tool_use") continue;
    found = true;
    block = c;
  }
  REQUIRE(found);
  CHECK(block["name"].get_string().get(name) == simdjson::SUCCESS);
  CHECK(name == "get_weather");
  CHECK(block["id"].get_string().get(id) == simdjson::SUCCESS);
  CHECK_FALSE(id.empty());
  check_weather_args(block["input"].value_unsafe());

  // Streamed: a tool_use content block whose input_json_delta pieces join to the same input.
  const Response s = request("POST", env().url + "/v1/messages", body + R"(,"stream":true})", headers, nullptr,
                             60'000);
  REQUIRE(s.status == 200);
  CAPTURE(s.body);
  std::string partial;
  bool tool_block = false;
  std::string stream_stop;
  size_t pos = 0;
  while ((pos = s.body.find("data: ", pos)) != std::string::npos) {
    const size_t end = s.body.find('\n', pos);
    const std::string data = s.body.substr(pos + 6, end - pos - 6);
    pos = end;
    simdjson::dom::parser ep;
    simdjson::dom::element ev;
    REQUIRE(ep.parse(data).get(ev) == simdjson::SUCCESS);
    std::string_view t, v;
    if (!ev.at_pointer("/content_block/type").get_string().get(t) && t == "tool_use") {
      tool_block = true;
      CHECK(ev.at_pointer("/content_block/name").get_string().get(v) == simdjson::SUCCESS);
      CHECK(v == "get_weather");
    }
    if (!ev.at_pointer("/delta/partial_json").get_string().get(v)) partial += v;
    if (!ev.at_pointer("/delta/stop_reason").get_string().get(v)) stream_stop = std::string(v);
  }
  CHECK(tool_block);
  CHECK(stream_stop == "tool_use");
  simdjson::dom::parser ip;
  simdjson::dom::element input;
  REQUIRE(ip.parse(partial).get(input) == simdjson::SUCCESS);
  check_weather_args(input);
  CHECK(simdjson::minify(input) == simdjson::minify(block["input"].value_unsafe()));
}
