// Output shaping per route and the built-in price catalogue through the `frugal` binary,
// over loopback, against the C++ mock upstream (both protocols on one port): what the
// upstream received (GET /mock/last_request), the response headers, the ledger row, the
// cost report and /metrics.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "tests/support/gateway_env.h"
#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::request;
using frugal::test::Response;

namespace {

constexpr const char* kAdminToken = "shaping-admin";
const std::string kAuth = std::string("Authorization: Bearer ") + kAdminToken;

constexpr const char* kPolicy = R"(request_types:
  - name: shaped
    match: { header: { x-frugal-request-type: shaped } }
  - name: shaped_claude
    match: { header: { x-frugal-request-type: shaped-claude } }
  - name: default
routes:
  shaped:
    max_tokens: 64
    max_tokens_cap: 128
    stop: ["END"]
    concise: true
    reasoning_effort: low
    cache: false
    cascade:
      - model: gpt-4o-mini
  shaped_claude:
    max_tokens_cap: 100
    stop: ["END"]
    concise: "Answer in one word."
    reasoning_effort: low
    cache: false
    cascade:
      - model: claude-haiku-4-5
)";

struct Env : frugal::test::GatewayEnv {
  Env() : GatewayEnv("shaping-it") {
    start_mock({"--threads", "1"});
    write("policy.yaml", kPolicy);
    write("frugal.yaml", "data_dir: " + (dir / "data").string() + R"(
policy: policy.yaml
admin_token: )" + kAdminToken + R"(
telemetry: { metrics: { enabled: true } }
cache: { enabled: false }
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
  fast: mock/gpt-4o-mini
passthrough:
  - { prefix: "claude-", provider: claude }
  - { prefix: "", provider: mock }
)");
    start_gateway();
  }
  Response chat(const std::string& body, std::vector<std::string> headers = {}) {
    return request("POST", url + "/v1/chat/completions", body, std::move(headers));
  }
  Response messages(const std::string& body, std::vector<std::string> headers = {}) {
    headers.emplace_back("anthropic-version: 2023-06-01");
    return request("POST", url + "/v1/messages", body, std::move(headers));
  }
  std::string upstream_body() { return request("GET", mock_url + "/mock/last_request").body; }
};

Env& env() {
  static Env e;
  return e;
}

std::string minified(const std::string& json, const char* pointer) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  auto err = p.parse(json).at_pointer(pointer).get(e);
  REQUIRE_MESSAGE(!err, pointer << " in " << json);
  return simdjson::minify(e);
}

bool has(const std::string& json, const char* pointer) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  return !p.parse(json).at_pointer(pointer).get(e);
}

// The ledger row of `request_id` (written before the response's last bytes).
std::string ledger_row(const std::string& request_id) {
  auto r = request("GET", env().admin_url + "/v1/frugal/ledger?from=0&limit=10000", {}, {kAuth});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  simdjson::dom::parser p;
  const simdjson::dom::array rows = p.parse(r.body)["rows"].get_array().value();
  for (simdjson::dom::element row : rows) {
    std::string_view id;
    if (!row["id"].get_string().get(id) && id == request_id) return simdjson::minify(row);
  }
  FAIL("no ledger row for " << request_id);
  return {};
}

// The value of one sample in a /metrics exposition; -1 when absent.
double metric_sample(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

const std::string kUser = R"("messages":[{"role":"user","content":"Which colour is the sky?"}])";

}  // namespace

TEST_CASE("an OpenAI request on a shaping route reaches the upstream shaped, and the row says what was applied") {
  auto r = env().chat(R"({"model":"auto",)" + kUser + "}", {"x-frugal-request-type: shaped"});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::string up = env().upstream_body();
  CHECK(minified(up, "/model") == R"("gpt-4o-mini")");
  CHECK(minified(up, "/max_completion_tokens") == "64");
  CHECK_FALSE(has(up, "/max_tokens"));
  CHECK(minified(up, "/stop") == R"(["END"])");
  CHECK(minified(up, "/reasoning_effort") == R"("low")");
  CHECK(minified(up, "/messages/0/role") == R"("system")");
  CHECK(minified(up, "/messages/0/content").find("Answer concisely") != std::string::npos);
  CHECK(minified(up, "/messages/1/content") == R"("Which colour is the sky?")");
  CHECK(r.header("x-frugal-shaping") == "max_tokens_default,stop,concise,reasoning_effort");
  // Priced by the catalogue without any `prices:`: 12 input + 7 output tokens of
  // gpt-4o-mini at $0.15 / $0.60 per 1M.
  CHECK(r.header("x-frugal-cost-usd") == "0.000006");
  const std::string row = ledger_row(r.header("x-request-id"));
  CHECK(minified(row, "/shaping") == R"({"applied":["max_tokens_default","stop","concise","reasoning_effort"],"max_tokens":64})");
  CHECK(minified(row, "/tiers/0/price") == R"("catalogue")");
  CHECK(minified(row, "/catalogue_version").size() > 2);
  CHECK(minified(row, "/price_unknown") == "false");

  // The client's own, larger max_tokens is capped (its key kept); its stop stays first.
  auto capped = env().chat(R"({"model":"auto","max_tokens":5000,"stop":["Q:"],)" + kUser + "}",
                           {"x-frugal-request-type: shaped"});
  REQUIRE_MESSAGE(capped.status == 200, capped.body);
  const std::string up2 = env().upstream_body();
  CHECK(minified(up2, "/max_tokens") == "128");
  CHECK_FALSE(has(up2, "/max_completion_tokens"));
  CHECK(minified(up2, "/stop") == R"(["Q:","END"])");
  CHECK(capped.header("x-frugal-shaping") == "max_tokens_cap,stop,concise,reasoning_effort");
}

TEST_CASE("an Anthropic request on a shaping route: max_tokens capped, stop_sequences and system, no reasoning_effort") {
  auto r = env().messages(
      R"({"model":"claude-haiku-4-5","max_tokens":1000,"system":"You help.","stop_sequences":["Q:"],)"
      R"("messages":[{"role":"user","content":"Which colour is the sky?"}]})",
      {"x-frugal-request-type: shaped-claude"});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::string up = env().upstream_body();
  CHECK(minified(up, "/max_tokens") == "100");
  CHECK(minified(up, "/system") == R"("You help.\n\nAnswer in one word.")");
  CHECK(minified(up, "/stop_sequences") == R"(["Q:","END"])");
  CHECK_FALSE(has(up, "/reasoning_effort"));
  CHECK_FALSE(has(up, "/thinking"));
  const std::string row = ledger_row(r.header("request-id"));
  CHECK(minified(row, "/shaping/max_tokens") == "100");
  CHECK(minified(row, "/tiers/0/price") == R"("catalogue")");
}

TEST_CASE("an OpenAI request shaped for an Anthropic tier: translated with the cap, its route effort left out") {
  auto r = env().chat(R"({"model":"auto",)" + kUser + "}", {"x-frugal-request-type: shaped-claude"});
  REQUIRE_MESSAGE(r.status == 200, r.body);  // not refused for a reasoning_effort Anthropic lacks
  const std::string up = env().upstream_body();
  CHECK(minified(up, "/model") == R"("claude-haiku-4-5")");
  CHECK(minified(up, "/max_tokens") == "100");  // the cap, not the translator's 4096 default
  CHECK(minified(up, "/stop_sequences") == R"(["END"])");
  CHECK(minified(up, "/system").find("Answer in one word.") != std::string::npos);
  CHECK_FALSE(has(up, "/reasoning_effort"));
  CHECK(r.header("x-frugal-shaping") == "max_tokens_cap,stop,concise,reasoning_effort");

  // The client's own reasoning_effort is refused for Anthropic as before.
  auto own = env().chat(R"({"model":"auto","reasoning_effort":"high",)" + kUser + "}",
                        {"x-frugal-request-type: shaped-claude"});
  CHECK(own.status == 400);
  CHECK(own.body.find("reasoning_effort") != std::string::npos);
}

TEST_CASE("without a route: the catalogue prices the requested model, an unknown model is booked as unknown") {
  auto known = env().chat(R"({"model":"gpt-4o-mini",)" + kUser + "}");
  REQUIRE_MESSAGE(known.status == 200, known.body);
  CHECK(known.header("x-frugal-cost-usd") == "0.000006");
  CHECK(known.header("x-frugal-savings-usd") == "0.000000");  // baseline = the requested model
  CHECK(known.header("x-frugal-price").empty());
  CHECK(known.header("x-frugal-shaping").empty());  // no route, no shaping
  const std::string krow = ledger_row(known.header("x-request-id"));
  CHECK(minified(krow, "/baseline_usd") == R"("0.000006")");
  CHECK(minified(krow, "/tiers/0/price") == R"("catalogue")");

  // An alias whose upstream model is in the catalogue is priced as that model.
  auto alias = env().chat(R"({"model":"fast",)" + kUser + "}");
  REQUIRE_MESSAGE(alias.status == 200, alias.body);
  CHECK(alias.header("x-frugal-cost-usd") == "0.000006");

  auto unknown = env().chat(R"({"model":"mystery-model",)" + kUser + "}");
  REQUIRE_MESSAGE(unknown.status == 200, unknown.body);
  CHECK(unknown.header("x-frugal-cost-usd") == "unknown");
  CHECK(unknown.header("x-frugal-savings-usd") == "unknown");
  CHECK(unknown.header("x-frugal-price") == "unknown");
  const std::string urow = ledger_row(unknown.header("x-request-id"));
  CHECK(minified(urow, "/price_unknown") == "true");
  CHECK(minified(urow, "/tiers/0/price") == R"("unknown")");

  auto costs = request("GET", env().admin_url + "/v1/frugal/costs?from=0&group_by=model", {}, {kAuth});
  REQUIRE_MESSAGE(costs.status == 200, costs.body);
  simdjson::dom::parser p;
  bool seen = false;
  for (simdjson::dom::element row : simdjson::dom::array(p.parse(costs.body)["rows"].get_array().value())) {
    std::string_view model;
    if (row["model"].get(model) || model != "mystery-model") continue;
    seen = true;
    CHECK(row["unpriced"].get_int64().value() == 1);
    CHECK(std::string_view(row["price"].get_string().value()) == "unknown");
  }
  CHECK(seen);
  auto table = request("GET", env().admin_url + "/v1/frugal/costs?from=0&group_by=model&format=table", {}, {kAuth});
  CHECK(table.body.find("unpriced") != std::string::npos);

  auto m = request("GET", env().admin_url + "/metrics", {}, {kAuth});
  REQUIRE(m.status == 200);
  CHECK(metric_sample(m.body, "frugal_unpriced_requests_total{model=\"mystery-model\"}") == 1);
  CHECK(metric_sample(m.body, "frugal_unpriced_requests_total{model=\"gpt-4o-mini\"}") == -1);
}
