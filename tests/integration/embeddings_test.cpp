// POST /v1/embeddings through the `frugal` binary against the C++ mock upstream: forwarded
// to an OpenAI-compatible provider, priced by input tokens, exact-cached, booked in the
// ledger with its route and request type, alias fallbacks, policies that never reroute
// it, and errors in OpenAI's shape. Loopback only.
#include <doctest/doctest.h>
#include <simdjson.h>

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
  Env() : GatewayEnv("embed-it") {
    start_mock({"--require-key", "sk-test"});
    // The policy routes every request to a chat cascade: embeddings must ignore it.
    write("policy.yaml", R"(request_types:
  - name: everything
routes:
  everything:
    reference_model: chat-large
    cascade:
      - model: chat-small
        accept: { non_empty: true }
      - model: chat-large
prices:
  chat-small: { input: 0.10, output: 0.40 }
  chat-large: { input: 10.00, output: 30.00 }
  text-embedding-3-small: { input: 1.00, output: 0 }
  emb: { input: 2.00, output: 0 }
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
    api_key: sk-test
    retry: { max_attempts: 1 }
  dead:
    kind: openai
    base_url: http://127.0.0.1:1/v1
    retry: { max_attempts: 1 }
  claude:
    kind: anthropic
    base_url: )" + mock_url + R"(
    api_key: sk-test
models:
  emb: [dead/text-embedding-3-small, mock/text-embedding-3-large]
  claude-emb: claude/claude-sonnet-4-5
passthrough:
  - { prefix: "text-embedding-", provider: mock }
  - { prefix: "chat-", provider: mock }
telemetry:
  metrics: { enabled: true }
)");
    start_gateway();
  }
  Response embed(const std::string& body, std::vector<std::string> headers = {}) {
    return request("POST", url + "/v1/embeddings", body, std::move(headers));
  }
  int64_t upstream_embeddings() {
    simdjson::dom::parser p;
    return p.parse(request("GET", mock_url + "/mock/stats").body)["embeddings"].get_int64().value();
  }
  std::string last_upstream_body() { return request("GET", mock_url + "/mock/last_request").body; }
  // The ledger row of `id` (rows of successful answers are durable before the response).
  std::string ledger_row(const std::string& id) {
    auto r = request("GET", admin_url + "/v1/frugal/ledger?from=0&limit=10000");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    simdjson::dom::parser p;
    const simdjson::dom::array rows = p.parse(r.body)["rows"].get_array().value();
    for (simdjson::dom::element row : rows) {
      std::string_view rid;
      if (!row["id"].get_string().get(rid) && rid == id) return simdjson::minify(row);
    }
    return {};
  }
};

Env& env() {
  static Env e;
  return e;
}

TEST_CASE("embeddings: forwarded with the upstream model, priced by input tokens, cached, booked") {
  auto& e = env();
  const int64_t before = e.upstream_embeddings();
  const std::string body = R"({"model":"text-embedding-3-small","input":["one two three","four five"],"user":"u1"})";
  auto a = e.embed(body);
  REQUIRE_MESSAGE(a.status == 200, a.body);
  CHECK(e.upstream_embeddings() == before + 1);
  simdjson::dom::parser p;
  simdjson::dom::element root = p.parse(a.body).value();
  CHECK(std::string_view(root["object"].get_string().value()) == "list");
  CHECK(root["data"].get_array().value().size() == 2);
  CHECK(root["usage"]["prompt_tokens"].get_int64().value() == 5);
  const std::string up = e.last_upstream_body();
  CHECK(up.find(R"("model":"text-embedding-3-small")") != std::string::npos);
  CHECK(up.find(R"("input":["one two three","four five"])") != std::string::npos);
  // 5 input tokens at $1.00 / 1M; the policy's chat route was not taken.
  CHECK(a.header("x-frugal-cost-usd") == "0.000005");
  CHECK(a.header("x-frugal-route") == "embeddings");
  CHECK(a.header("x-frugal-request-type") == "everything");
  CHECK(a.header("x-frugal-cache") == "miss");
  CHECK(a.header("x-frugal-model") == "text-embedding-3-small");
  const std::string row = e.ledger_row(a.header("x-request-id"));
  REQUIRE_MESSAGE(!row.empty(), a.header("x-request-id"));
  CHECK(row.find(R"("route":"embeddings")") != std::string::npos);
  CHECK(row.find(R"("type":"everything")") != std::string::npos);
  CHECK(row.find(R"("model":"text-embedding-3-small","provider":"mock","usage":{"in":5,)") != std::string::npos);
  CHECK(row.find(R"("out":0,)") != std::string::npos);
  CHECK(row.find(R"("cost_usd":"0.000005")") != std::string::npos);

  // The same request again: from the cache, upstream not asked, cost 0, same bytes.
  auto b = e.embed(R"({ "input": ["one two three", "four five"], "model": "text-embedding-3-small" })");
  REQUIRE(b.status == 200);
  CHECK(b.header("x-frugal-cache") == "hit");
  CHECK(b.body == a.body);
  CHECK(b.header("x-frugal-cost-usd") == "0.000000");
  CHECK(e.upstream_embeddings() == before + 1);
  CHECK(!e.ledger_row(b.header("x-request-id")).empty());

  // Metrics name the GenAI operation.
  auto metrics = request("GET", e.admin_url + "/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(metrics.body.find(R"(gen_ai_operation_name="embeddings")") != std::string::npos);

  // Another input, format or size is another entry.
  auto c = e.embed(R"({"model":"text-embedding-3-small","input":["one two three","four five"],"encoding_format":"base64"})");
  REQUIRE(c.status == 200);
  CHECK(c.header("x-frugal-cache") == "miss");
  auto d = e.embed(R"({"model":"text-embedding-3-small","input":"one two three","dimensions":8})");
  REQUIRE(d.status == 200);
  CHECK(d.header("x-frugal-cache") == "miss");
  CHECK(e.upstream_embeddings() == before + 3);
  simdjson::dom::parser p2;
  CHECK(p2.parse(d.body)["data"].at(0)["embedding"].get_array().value().size() == 8);
}

TEST_CASE("embeddings: an alias's fallback answers when its first target is down") {
  auto& e = env();
  auto r = e.embed(R"({"model":"emb","input":"fall back please"})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(e.last_upstream_body().find(R"("model":"text-embedding-3-large")") != std::string::npos);
  CHECK(r.header("x-frugal-model") == "text-embedding-3-large");
  CHECK(r.header("x-frugal-cost-usd") == "0.000006");  // 3 tokens at the alias's $2.00 / 1M
  const std::string row = e.ledger_row(r.header("x-request-id"));
  CHECK(row.find(R"("provider":"mock")") != std::string::npos);
}

TEST_CASE("embeddings: bad input, unknown model and a provider without embeddings, in OpenAI's shape") {
  auto& e = env();
  struct Case {
    std::string body;
    long status;
    const char* needle;
  };
  const Case cases[] = {
      {R"({"model":"text-embedding-3-small","input":""})", 400, R"("param":"input")"},
      {R"({"model":"text-embedding-3-small","input":[]})", 400, R"("param":"input")"},
      {R"({"model":"text-embedding-3-small"})", 400, R"("param":"input")"},
      {R"({"input":"x"})", 400, R"("param":"model")"},
      {R"({"model":"text-embedding-3-small","input":"x","encoding_format":"hex"})", 400,
       R"("param":"encoding_format")"},
      {R"({"model":"text-embedding-3-small","input":[1,"a"]})", 400, R"("param":"input")"},
      {"not json", 400, R"("type":"invalid_request_error")"},
      {R"({"model":"no-such-embedder","input":"x"})", 404, R"("code":"model_not_found")"},
      {R"({"model":"claude-emb","input":"x"})", 400, R"("code":"embeddings_not_supported")"},
  };
  const int64_t before = e.upstream_embeddings();
  for (const Case& c : cases) {
    CAPTURE(c.body);
    auto r = e.embed(c.body);
    CHECK(r.status == c.status);
    CHECK(r.body.find(R"({"error":{)") == 0);
    CHECK(r.body.find(c.needle) != std::string::npos);
  }
  CHECK(e.upstream_embeddings() == before);
  auto get = request("GET", e.url + "/v1/embeddings");
  CHECK(get.status == 405);
  // The gateway keeps serving.
  CHECK(e.embed(R"({"model":"text-embedding-3-small","input":"still here"})").status == 200);
}

}  // namespace
