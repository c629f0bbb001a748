#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <vector>

#include "policies/policy.h"
#include "policies/regex.h"
#include "test_util.h"

using namespace frugal::policies;
using frugal::policies::testing::compile_text;
using frugal::policies::testing::example_policy;

TEST_CASE("classification: first match wins, default last") {
  auto pol = example_policy();
  RequestFacts f;
  f.model = "gpt-4o-mini";
  CHECK(classify(*pol, f).name == "chat");

  const StringPair h[] = {{"x-frugal-request-type", "classify"}};
  f.headers = h;
  f.system_prompt = "Extract the fields";  // would match extract too; classify comes first
  CHECK(classify(*pol, f).name == "classify");

  f.headers = {};
  CHECK(classify(*pol, f).name == "extract");  // (?i) regex
  f.system_prompt = "EXTRACT";
  CHECK(classify(*pol, f).name == "extract");
  f.system_prompt = "summarise";
  f.response_format = ResponseFormatType::kJsonSchema;
  CHECK(classify(*pol, f).name == "extract");
  f.response_format = ResponseFormatType::kJsonObject;
  CHECK(classify(*pol, f).name == "chat");
}

TEST_CASE("classification: team lists, not, model globs") {
  auto pol = example_policy();
  RequestFacts f;
  f.team = "cx";
  f.model = "claude-3-haiku";
  CHECK(classify(*pol, f).name == "support");
  f.model = "gpt-4o-2024-08-06";  // glob gpt-4o* excludes it
  CHECK(classify(*pol, f).name == "chat");
  f.team = "search";
  f.model = "claude-3-haiku";
  CHECK(classify(*pol, f).name == "chat");
}

TEST_CASE("classification: tags from the header and from facts, prompt bounds") {
  auto pol = example_policy();
  RequestFacts f;
  const StringPair h[] = {{"x-frugal-tags", " alpha , nightly-batch,beta"}};
  f.headers = h;
  CHECK(classify(*pol, f).name == "tagged");
  const StringPair h2[] = {{"x-frugal-tags", "nightly-batches"}};
  f.headers = h2;
  CHECK(classify(*pol, f).name == "chat");
  const std::string_view tags[] = {"nightly-batch"};
  f.tags = tags;
  CHECK(classify(*pol, f).name == "tagged");
  f.tags = {};
  f.prompt_tokens_estimate = 19'999;
  CHECK(classify(*pol, f).name == "chat");
  f.prompt_tokens_estimate = 20'000;
  CHECK(classify(*pol, f).name == "long");
}

TEST_CASE("classification: metadata, dialect, path, api key, header regex, user message") {
  auto pol = compile_text(R"(
request_types:
  - name: meta
    match: { metadata: { feature: { regex: "^search-" } } }
  - name: anthropic_batch
    match: { dialect: anthropic, path: "/v1/messages*" }
  - name: vip
    match: { api_key: [key-1, key-2] }
  - name: ua
    match: { header: { user-agent: { glob: "python-requests/*" } } }
  - name: sql
    match: { user_message_regex: "\\bSELECT\\b" }
  - name: chat
)");
  RequestFacts f;
  const StringPair md[] = {{"feature", "search-ranking"}};
  f.metadata = md;
  CHECK(classify(*pol, f).name == "meta");
  const StringPair md2[] = {{"feature", "x-search-ranking"}, {"other", "search-"}};
  f.metadata = md2;
  CHECK(classify(*pol, f).name == "chat");
  f.metadata = {};
  f.dialect = frugal::Dialect::kAnthropic;
  f.path = "/v1/messages";
  CHECK(classify(*pol, f).name == "anthropic_batch");
  f.path = "/v1/chat/completions";
  CHECK(classify(*pol, f).name == "chat");  // both conditions needed
  f.api_key_id = "key-2";
  CHECK(classify(*pol, f).name == "vip");
  f.api_key_id = "key-3";
  const StringPair h[] = {{"user-agent", "python-requests/2.31"}};
  f.headers = h;
  CHECK(classify(*pol, f).name == "ua");
  f.headers = {};
  f.last_user_message = "please run SELECT * FROM t";
  CHECK(classify(*pol, f).name == "sql");
  f.last_user_message = "selection";
  CHECK(classify(*pol, f).name == "chat");
  f.last_user_message = "\xff\xfe SELECT";  // invalid UTF-8: a non-match, not a crash
  CHECK(classify(*pol, f).name == "chat");
}

TEST_CASE("glob matching") {
  CHECK(glob_match("gpt-4o*", "gpt-4o"));
  CHECK(glob_match("gpt-4o*", "gpt-4o-mini"));
  CHECK(!glob_match("gpt-4o*", "gpt-4"));
  CHECK(glob_match("*mini", "gpt-4o-mini"));
  CHECK(glob_match("g?t-*-m*i", "gpt-4o-mini"));
  CHECK(!glob_match("g?t", "gpt-4o"));
  CHECK(glob_match("*", ""));
  CHECK(glob_match("a*b*c", "aXXbYYc"));
  CHECK(!glob_match("a*b*c", "aXXbYY"));
}

TEST_CASE("plans carry tiers, rules, logprob needs, verifier, cache and stream mode") {
  auto pol = example_policy();
  const RoutePlan* p = plan_route(*pol, "classify");
  REQUIRE(p);
  REQUIRE(p->tiers.size() == 3);
  CHECK(p->tiers[0].model == "local/small-q4");
  CHECK(p->tiers[0].needs_logprobs);
  CHECK(p->tiers[0].top_logprobs == 0);
  CHECK(!p->tiers[0].last);
  CHECK(p->tiers[2].last);
  CHECK(p->tiers[2].rule == nullptr);
  CHECK(p->reference_model == "gpt-4o");
  CHECK(p->cache.enabled);
  CHECK(p->cache.ttl_ms == 3'600'000);
  CHECK(p->stream_mode == frugal::config::StreamMode::kCascade);
  const RoutePlan* e = plan_route(*pol, "extract");
  REQUIRE(e);
  CHECK(e->tiers[0].needs_logprobs);
  CHECK(e->tiers[0].top_logprobs == 2);
  CHECK(!e->tiers[1].needs_logprobs);
  CHECK(plan_route(*pol, "chat")->stream_mode == frugal::config::StreamMode::kFirstTier);
  CHECK(plan_route(*pol, "support") == nullptr);  // no route: pass through
}

namespace {
std::atomic<int> g_limit_handler_calls{0};
void count_limit_hit(const std::string&) { ++g_limit_handler_calls; }
}  // namespace

TEST_CASE("a regex that hits the PCRE2 match limit counts as no match, is counted and the request still classifies") {
  // (a+)+$ backtracks exponentially on "aaa...ab": PCRE2 gives up at its limit.
  auto pol = compile_text(R"(
request_types:
  - name: catastrophic
    match: { user_message_regex: "(a+)+$" }
  - name: chat
)");
  set_regex_limit_handler(&count_limit_hit);
  const uint64_t before = regex_limit_hits();
  const int calls_before = g_limit_handler_calls.load();
  RequestFacts f;
  f.model = "gpt-4o-mini";
  const std::string evil = std::string(40, 'a') + "b";
  f.last_user_message = evil;
  CHECK(classify(*pol, f).name == "chat");  // routed by the next rule
  CHECK(regex_limit_hits() == before + 1);
  CHECK(g_limit_handler_calls.load() == calls_before + 1);

  // An ordinary miss and an ordinary match are not give-ups.
  f.last_user_message = "hello b";
  CHECK(classify(*pol, f).name == "chat");
  f.last_user_message = "aaaa";
  CHECK(classify(*pol, f).name == "catastrophic");
  CHECK(regex_limit_hits() == before + 1);
  set_regex_limit_handler(nullptr);
}
