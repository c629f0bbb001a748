#include <doctest/doctest.h>

#include <string>

#include "config/policy_config.h"
#include "example_policy.h"

using frugal::config::load_policy_text;
using frugal::config::parse_usd_micros;
using frugal::config::RuleSpec;
using frugal::config::StreamMode;

namespace {

// Loads `text` expecting failure; returns the message.
std::string error_of(const std::string& text) {
  auto r = load_policy_text(text, "p.yaml");
  REQUIRE_MESSAGE(!r.ok(), "expected a load error");
  return r.error().message;
}

const char* kPrices = R"(
prices:
  a: { input: 1, output: 2 }
  b: { input: 1, output: 2 }
)";

}  // namespace

TEST_CASE("usd text parses exactly into micro-dollars") {
  CHECK(*parse_usd_micros("2.50") == 2'500'000);
  CHECK(*parse_usd_micros("0.075") == 75'000);
  CHECK(*parse_usd_micros("0.000001") == 1);
  CHECK(*parse_usd_micros("10") == 10'000'000);
  CHECK(*parse_usd_micros("0.1") == 100'000);  // 0.1 is not exact in binary floating point
  CHECK(*parse_usd_micros("123456789.123456") == 123'456'789'123'456);
  for (const char* bad : {"0.0000001", "-1", "1e3", "", ".5", "5.", "1,5", "abc", "1.2.3", " 1"})
    CHECK_MESSAGE(!parse_usd_micros(bad).ok(), bad);
  CHECK(parse_usd_micros("0.1234567").error().message.find("more than 6 decimals") != std::string::npos);
}

TEST_CASE("the example policy loads with every part in place") {
  auto r = load_policy_text(frugal::policies::testing::kExamplePolicy, "example.yaml");
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  const auto& p = *r;
  REQUIRE(p.request_types.size() == 6);
  CHECK(p.request_types[0].name == "classify");
  CHECK(!p.request_types[5].match);
  const auto* c = p.route("classify");
  REQUIRE(c);
  CHECK(c->reference_model == "gpt-4o");
  REQUIRE(c->tiers.size() == 3);
  CHECK(c->tiers[0].model == "local/small-q4");
  REQUIRE(c->tiers[0].accept);
  CHECK(c->tiers[0].accept->kind == RuleSpec::Kind::kAll);
  CHECK(c->tiers[0].accept->children[0].kind == RuleSpec::Kind::kMeanLogprob);
  CHECK(c->tiers[0].accept->children[0].threshold == doctest::Approx(-0.35));
  CHECK(!c->tiers[2].accept);
  CHECK(c->cache_enabled);
  CHECK(c->cache_ttl_ms == 3'600'000);
  CHECK(p.route("chat")->stream_mode == StreamMode::kFirstTier);
  const auto* sonnet = p.price("claude-sonnet-4-5");
  REQUIRE(sonnet);
  CHECK(*sonnet->input == 3'000'000);
  CHECK(*sonnet->cached_input == 300'000);
  CHECK(*sonnet->cache_write_5m == 3'750'000);
  CHECK(*sonnet->cache_write_1h == 6'000'000);
  CHECK(*sonnet->output == 15'000'000);
  CHECK(*p.price("local/small-q4")->gpu_hour == 2'100'000);
  REQUIRE(p.budgets.size() == 2);
  CHECK(p.budgets[0].name == "team=search per day");
  CHECK(*p.budgets[0].soft == frugal::Money::from_micros(50'000'000));
  CHECK(*p.budgets[0].hard == frugal::Money::from_micros(80'000'000));
  CHECK(p.budgets[1].name == "global per month");
  CHECK(!p.refusal_phrases.empty());
}

TEST_CASE("errors name file, line, column, key and what was expected") {
  SUBCASE("unknown key") {
    const std::string m = error_of("request_types:\n  - name: chat\n    mtach: {}\n");
    CHECK(m.find("p.yaml:3:5") != std::string::npos);
    CHECK(m.find("request_types[0].mtach") != std::string::npos);
    CHECK(m.find("unknown key (expected one of: name, match)") != std::string::npos);
  }
  SUBCASE("wrong type") {
    const std::string m = error_of(std::string(kPrices) +
                                   "request_types:\n  - name: chat\nroutes:\n  chat:\n    cascade:\n"
                                   "      - model: a\n        accept: { mean_logprob: { min: high } }\n");
    CHECK(m.find("p.yaml:11:") != std::string::npos);
    CHECK(m.find("mean_logprob.min") != std::string::npos);
    CHECK(m.find("expected a number, got 'high'") != std::string::npos);
  }
  SUBCASE("unknown request type in routes") {
    const std::string m = error_of(std::string(kPrices) +
                                   "request_types:\n  - name: chat\nroutes:\n  chta:\n    cascade: [ { model: a } ]\n");
    CHECK(m.find("p.yaml:9:5: key 'routes.chta'") != std::string::npos);
    CHECK(m.find("unknown request type 'chta'") != std::string::npos);
  }
  SUBCASE("unknown model") {
    const std::string m = error_of(std::string(kPrices) +
                                   "request_types:\n  - name: chat\nroutes:\n  chat:\n    cascade:\n      - model: a\n      - model: zz\n");
    CHECK(m.find("p.yaml:11:9") != std::string::npos);
    CHECK(m.find("unknown model 'zz'") != std::string::npos);
  }
  SUBCASE("unknown verifier model") {
    const std::string m = error_of(std::string(kPrices) +
                                   "request_types:\n  - name: chat\nroutes:\n  chat:\n    cascade:\n"
                                   "      - model: a\n        accept: { verifier: { model: q, prompt: \"ok?\", min_p_yes: 0.7 } }\n      - model: b\n");
    CHECK(m.find("unknown model 'q'") != std::string::npos);
  }
  SUBCASE("regex that does not compile") {
    const std::string m = error_of(
        "request_types:\n  - name: x\n    match: { system_prompt_regex: \"(unclosed\" }\n  - name: chat\n");
    CHECK(m.find("p.yaml:3:") != std::string::npos);
    CHECK(m.find("system_prompt_regex") != std::string::npos);
    CHECK(m.find("regex does not compile") != std::string::npos);
  }
  SUBCASE("price with too many decimals") {
    const std::string m = error_of("prices:\n  a: { input: 0.0000001, output: 1 }\nrequest_types:\n  - name: chat\n");
    CHECK(m.find("p.yaml:2:15") != std::string::npos);
    CHECK(m.find("prices.a.input") != std::string::npos);
    CHECK(m.find("more than 6 decimals") != std::string::npos);
  }
  SUBCASE("budget limit with too many decimals") {
    const std::string m = error_of(
        "request_types:\n  - name: chat\nbudgets:\n  - { scope: global, per: day, hard: 1.0000001 }\n");
    CHECK(m.find("budgets[0].hard") != std::string::npos);
    CHECK(m.find("more than 6 decimals") != std::string::npos);
  }
  SUBCASE("mixing gpu_hour and token prices") {
    CHECK(error_of("prices:\n  a: { input: 1, output: 1, gpu_hour: 2 }\nrequest_types:\n  - name: chat\n")
              .find("not both") != std::string::npos);
  }
  SUBCASE("default type not last") {
    CHECK(error_of("request_types:\n  - name: chat\n  - name: x\n    match: { dialect: openai }\n")
              .find("must be the last one") != std::string::npos);
  }
  SUBCASE("no default type") {
    CHECK(error_of("request_types:\n  - name: x\n    match: { dialect: openai }\n")
              .find("default request type") != std::string::npos);
  }
  SUBCASE("bad enum values") {
    CHECK(error_of("request_types:\n  - name: x\n    match: { dialect: grpc }\n  - name: chat\n")
              .find("expected openai, anthropic or responses, got 'grpc'") != std::string::npos);
    CHECK(error_of("request_types:\n  - name: x\n    match: { response_format: yaml }\n  - name: chat\n")
              .find("json_schema") != std::string::npos);
  }
  SUBCASE("budget soft above hard") {
    CHECK(error_of("request_types:\n  - name: chat\nbudgets:\n  - { scope: global, per: day, soft: 9, hard: 8 }\n")
              .find("soft limit is greater than the hard limit") != std::string::npos);
  }
  SUBCASE("YAML syntax") {
    CHECK(error_of("request_types: [\n").find("p.yaml:") != std::string::npos);
  }
}

TEST_CASE("a last tier with an accept rule is allowed") {
  auto r = load_policy_text(std::string(kPrices) +
                                "request_types:\n  - name: chat\nroutes:\n  chat:\n    cascade:\n"
                                "      - model: a\n        accept: { non_empty: true }\n",
                            "p.yaml");
  REQUIRE(r.ok());
  CHECK(r->route("chat")->tiers.back().accept.has_value());
  CHECK(r->route("chat")->reference_model == "a");  // defaults to the last tier's model
}
