// backends/http/provider: the body sent to an OpenAI-compatible upstream.
#include <doctest/doctest.h>
#include <simdjson.h>

#include "backends/http/provider.h"

using namespace frugal;

namespace {

std::string encode(std::string_view body, std::string_view model, bool cascade_logprobs = false) {
  static simdjson::dom::parser parser;
  auto req = parse_chat_body(parser, body);
  REQUIRE_MESSAGE(req.ok(), (req.ok() ? "" : req.error().message));
  if (cascade_logprobs) req->sampling.logprobs = true;
  return http::openai_chat_body(*req, model);
}

// The encoded body parses, and `key` holds `expect` (minified JSON).
void check_field(const std::string& json, const char* key, std::string_view expect) {
  simdjson::dom::parser p;
  simdjson::dom::element root;
  REQUIRE_MESSAGE(!p.parse(json).get(root), json);
  simdjson::dom::element v;
  REQUIRE_MESSAGE(!root[key].get(v), key, " missing in ", json);
  CHECK_MESSAGE(simdjson::minify(v) == expect, json);
}

}  // namespace

TEST_CASE("the client's bytes go upstream with only the model replaced") {
  const std::string body = R"({ "messages": [{"role":"user","content":"say \"model\": {}"}],
    "model" : "fast",  "future_field": {"a": [1, 2.50, "x"]}, "temperature": 0 })";
  const std::string out = encode(body, "gpt-4o-mini");
  CHECK(out == R"({ "messages": [{"role":"user","content":"say \"model\": {}"}],
    "model" : "gpt-4o-mini",  "future_field": {"a": [1, 2.50, "x"]}, "temperature": 0 })");
  // A model name that needs escaping is escaped.
  check_field(encode(body, R"(org/"odd"\name)"), "model", R"("org/\"odd\"\\name")");
}

TEST_CASE("a stream asks upstream for usage, keeping the client's stream options") {
  std::string out = encode(R"({"model":"m","stream":true,"messages":[{"role":"user","content":"}"}]})", "up");
  CHECK(out == R"({"model":"up","stream":true,"messages":[{"role":"user","content":"}"}],"stream_options":{"include_usage":true}})");

  out = encode(R"({"model":"m","stream":true,"stream_options":{"include_usage":false,"x":1},)"
               R"("messages":[{"role":"user","content":"hi"}]})", "up");
  check_field(out, "stream_options", R"({"include_usage":true,"x":1})");
  check_field(out, "model", R"("up")");

  // Not a stream: stream_options is the client's business, passed through.
  out = encode(R"({"model":"m","stream_options":{"include_usage":false},"messages":[{"role":"user","content":"hi"}]})", "up");
  check_field(out, "stream_options", R"({"include_usage":false})");
}

TEST_CASE("log-probs asked for by the router, escaped or repeated keys: the body is re-encoded") {
  std::string out = encode(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})", "up", true);
  check_field(out, "logprobs", "true");
  check_field(out, "model", R"("up")");

  // "mod\u0065l" is `model` to a JSON parser: the scan cannot compare it, so re-encode.
  out = encode(R"({"mod\u0065l":"m","messages":[{"role":"user","content":"hi"}],"model":"again"})", "up");
  CHECK(out.find(R"("again")") == std::string::npos);
  check_field(out, "model", R"("up")");

  out = encode(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"model":"again"})", "up");
  CHECK(out.find(R"("again")") == std::string::npos);
  check_field(out, "messages", R"([{"role":"user","content":"hi"}])");
}
