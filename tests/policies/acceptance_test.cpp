#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "policies/acceptance.h"
#include "test_util.h"

using namespace frugal::policies;
using frugal::config::RuleSpec;

namespace {

// Compiles an acceptance rule from its YAML text via a one-route policy.
AcceptRule rule(const std::string& yaml_rule) {
  static std::vector<std::shared_ptr<const CompiledPolicy>> keep;  // rules point into policies
  auto pol = frugal::policies::testing::compile_text(
      "prices:\n  m: { input: 1, output: 1 }\n  v: { input: 1, output: 1 }\n"
      "request_types:\n  - name: chat\nroutes:\n  chat:\n    cascade:\n      - model: m\n        accept: " +
      yaml_rule + "\n      - model: m\n");
  keep.push_back(pol);
  return *plan_route(*pol, "chat")->tiers[0].rule;
}

AnswerView text(std::string_view t) {
  AnswerView a;
  a.text = t;
  a.finish_reason = "stop";
  return a;
}

}  // namespace

TEST_CASE("json_parse") {
  auto r = rule("{ json_parse: true }");
  CHECK(r.evaluate(text(R"({"a": [1, 2]})")).accepted);
  CHECK(r.evaluate(text("42")).accepted);
  const Decision d = r.evaluate(text("{\"a\": "));
  CHECK(!d.accepted);
  CHECK(d.reason.find("json_parse") != std::string::npos);
  CHECK(!r.evaluate(text("")).accepted);
  CHECK(!d.score.has_value());
}

TEST_CASE("json_schema against the request's schema") {
  auto r = rule("{ json_schema: true }");
  AnswerView a = text(R"({"name": "Ada", "age": 36})");
  a.response_schema_json =
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}},"required":["name","age"],"additionalProperties":false})";
  CHECK(r.evaluate(a).accepted);
  a.text = R"({"name": "Ada"})";
  Decision d = r.evaluate(a);
  CHECK(!d.accepted);
  CHECK(d.reason.find("missing required property 'age'") != std::string::npos);
  a.text = "not json";
  CHECK(!r.evaluate(a).accepted);
  // No schema in the request: degrades to a syntax check, and says so.
  a.response_schema_json = "";
  a.text = "[1]";
  d = r.evaluate(a);
  CHECK(d.accepted);
  CHECK(d.reason.find("no request schema") != std::string::npos);
}

TEST_CASE("regex, non_empty, length, finish_reason") {
  CHECK(rule("{ regex: \"^(positive|negative)$\" }").evaluate(text("negative")).accepted);
  CHECK(!rule("{ regex: \"^(positive|negative)$\" }").evaluate(text("neutral")).accepted);
  auto ne = rule("{ non_empty: true }");
  CHECK(!ne.evaluate(text("")).accepted);
  CHECK(!ne.evaluate(text(" \n\t")).accepted);
  CHECK(ne.evaluate(text(".")).accepted);
  AnswerView tc = text("");
  const frugal::ToolCall calls[] = {{"call_1", "lookup", "{}"}};
  tc.tool_calls = calls;
  CHECK(ne.evaluate(tc).accepted);  // a tool call is an answer
  auto len = rule("{ length: { min: 2, max: 4 } }");
  CHECK(!len.evaluate(text("a")).accepted);
  CHECK(len.evaluate(text("ab")).accepted);
  CHECK(len.evaluate(text("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9")).accepted);  // 4 chars, 8 bytes
  CHECK(!len.evaluate(text("abcde")).accepted);
  CHECK(len.evaluate(text("abcde")).reason == "length 5 > max 4");
  auto fr = rule("{ finish_reason: [stop, tool_calls] }");
  CHECK(fr.evaluate(text("x")).accepted);
  AnswerView cut = text("x");
  cut.finish_reason = "length";
  CHECK(!fr.evaluate(cut).accepted);
}

TEST_CASE("not_refusal: default and configured phrases, case-insensitive, opening window") {
  auto r = rule("{ not_refusal: true }");
  CHECK(!r.evaluate(text("I'm sorry, but I can't help with that.")).accepted);
  CHECK(!r.evaluate(text("as an ai language model, I")).accepted);
  CHECK(!r.evaluate(text("I cannot do that")).accepted);
  CHECK(r.evaluate(text("Positive.")).accepted);
  CHECK(r.evaluate(text("")).accepted);  // empty is not a refusal (use non_empty)
  // Beyond the first 200 characters a phrase is content, not a refusal.
  CHECK(r.evaluate(text(std::string(250, 'x') + " I cannot")).accepted);
  auto custom = rule("{ not_refusal: { phrases: [\"no comment\"] } }");
  CHECK(!custom.evaluate(text("No Comment.")).accepted);
  CHECK(custom.evaluate(text("I cannot")).accepted);
}

TEST_CASE("log-prob scores with exact values") {
  const double lp[] = {-0.1, -0.2, -0.3, -2.0, -0.4, -0.05, -0.15, -0.25, -0.35, -1.0};
  AnswerView a = text("ok");
  a.has_logprobs = true;
  a.token_logprobs = lp;
  auto mean = rule("{ mean_logprob: { min: -0.5 } }");
  Decision d = mean.evaluate(a);
  REQUIRE(d.score);
  CHECK(*d.score == doctest::Approx(-0.48));
  CHECK(d.accepted);
  CHECK(!rule("{ mean_logprob: { min: -0.47 } }").evaluate(a).accepted);
  d = rule("{ min_logprob: { min: -2.0 } }").evaluate(a);
  CHECK(*d.score == doctest::Approx(-2.0));
  CHECK(d.accepted);  // >= threshold
  // p10 over 10 tokens = the 1st smallest (nearest rank ceil(1.0) = 1).
  CHECK(*rule("{ p10_logprob: { min: -3 } }").evaluate(a).score == doctest::Approx(-2.0));
  const double lp20[] = {-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16, -17, -18, -19, -20};
  a.token_logprobs = lp20;
  CHECK(*rule("{ p10_logprob: { min: -30 } }").evaluate(a).score == doctest::Approx(-19.0));  // 2nd smallest
}

TEST_CASE("margin from top-2 log-probs") {
  const TopTwo t[] = {{-0.1, -2.1}, {-0.5, -1.0}, {-0.01, -5.01}};
  AnswerView a = text("x");
  a.top2 = t;
  Decision d = rule("{ margin: { min: 2.0 } }").evaluate(a);
  REQUIRE(d.score);
  CHECK(*d.score == doctest::Approx((2.0 + 0.5 + 5.0) / 3));
  CHECK(d.accepted);
  CHECK(!rule("{ margin: { min: 2.6 } }").evaluate(a).accepted);
}

TEST_CASE("missing inputs reject clearly instead of crashing") {
  AnswerView a = text("hello");
  for (const char* r : {"{ mean_logprob: { min: -1 } }", "{ min_logprob: { min: -1 } }",
                        "{ p10_logprob: { min: -1 } }"}) {
    Decision d = rule(r).evaluate(a);
    CHECK(!d.accepted);
    CHECK(!d.score);
    CHECK(d.reason.find("backend returned none") != std::string::npos);
  }
  a.has_logprobs = true;  // returned, but the answer is empty
  Decision d = rule("{ mean_logprob: { min: -1 } }").evaluate(a);
  CHECK(!d.accepted);
  CHECK(d.reason.find("no tokens") != std::string::npos);
  d = rule("{ margin: { min: 1 } }").evaluate(a);
  CHECK(!d.accepted);
  CHECK(d.reason.find("top-2") != std::string::npos);
  d = rule("{ verifier: { model: v, prompt: \"ok?\", min_p_yes: 0.7 } }").evaluate(a);
  CHECK(!d.accepted);
  CHECK(d.reason == "verifier P(yes) was not computed");
}

TEST_CASE("composition: all short-circuits but still reports the primary score, any, not") {
  const double lp[] = {-0.1, -0.3};
  AnswerView a = text("I'm sorry, but no.");
  a.has_logprobs = true;
  a.token_logprobs = lp;
  auto r = rule("{ all: [ { not_refusal: true }, { mean_logprob: { min: -0.35 } } ] }");
  Decision d = r.evaluate(a);
  CHECK(!d.accepted);
  CHECK(d.reason.find("not_refusal") != std::string::npos);
  REQUIRE(d.score);  // computed even though the short circuit skipped it
  CHECK(*d.score == doctest::Approx(-0.2));
  a.text = "Positive";
  d = r.evaluate(a);
  CHECK(d.accepted);
  CHECK(d.reason == "not_refusal ok, mean_logprob -0.200 >= -0.350");
  auto any = rule("{ any: [ { regex: \"^x\" }, { json_parse: true } ] }");
  CHECK(any.evaluate(text("[]")).accepted);
  CHECK(any.evaluate(text("xyz")).accepted);
  d = any.evaluate(text("y"));
  CHECK(!d.accepted);
  CHECK(d.reason.rfind("none of any", 0) == 0);
  auto nt = rule("{ not: { regex: \"(?i)lorem\" } }");
  CHECK(nt.evaluate(text("fine")).accepted);
  CHECK(!nt.evaluate(text("LOREM ipsum")).accepted);
  // A mapping with several keys means all of them.
  auto implicit = rule("{ non_empty: true, length: { max: 3 } }");
  CHECK(implicit.evaluate(text("abc")).accepted);
  CHECK(!implicit.evaluate(text("abcd")).accepted);
}

TEST_CASE("rule introspection: logprobs, top-logprobs, verifier") {
  CHECK(!rule("{ json_parse: true }").needs_logprobs());
  CHECK(rule("{ any: [ { json_parse: true }, { not: { min_logprob: { min: -3 } } } ] }").needs_logprobs());
  CHECK(rule("{ margin: { min: 1 } }").top_logprobs_needed() == 2);
  auto v = rule("{ all: [ { non_empty: true }, { verifier: { model: v, prompt: \"Is {answer} right for {question}?\", min_p_yes: 0.7 } } ] }");
  CHECK(!rule_needs_logprobs(v));
  auto spec = rule_verifier(v);
  REQUIRE(spec);
  CHECK(spec->model == "v");
  CHECK(spec->min_p_yes == doctest::Approx(0.7));
  CHECK(render_verifier_prompt(*spec, "2+2", "4") == "Is 4 right for 2+2?");
  AnswerView a = text("4");
  a.verifier_p_yes = 0.69;
  CHECK(!v.evaluate(a).accepted);
  a.verifier_p_yes = 0.7;
  CHECK(v.evaluate(a).accepted);
  CHECK(*v.evaluate(a).score == doctest::Approx(0.7));
}

TEST_CASE("p_yes from top log-probs") {
  const TokenLogprob t[] = {{"Yes", std::log(0.6)}, {" yes", std::log(0.1)}, {"No", std::log(0.2)},
                            {"Maybe", std::log(0.1)}};
  CHECK(p_yes_from_top_logprobs(t) == doctest::Approx(0.7 / 0.9));
  const TokenLogprob none[] = {{"Maybe", -0.1}};
  CHECK(p_yes_from_top_logprobs(none) == 0.0);
  CHECK(p_yes_from_top_logprobs({}) == 0.0);
  const TokenLogprob only_no[] = {{"no", -0.01}, {"NO.", -3}};
  CHECK(p_yes_from_top_logprobs(only_no) == 0.0);
  const TokenLogprob yes_words[] = {{"yesterday", -0.1}, {"YES", std::log(0.5)}, {"no", std::log(0.5)}};
  CHECK(p_yes_from_top_logprobs(yes_words) == doctest::Approx(0.5));
}

TEST_CASE("strip_logprobs nulls choices' logprobs in bodies and chunks, nothing else") {
  const std::string body =
      R"({"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":"hi \"logprobs\": {}"},)"
      R"("logprobs":{"content":[{"token":"hi","logprob":-0.1,"top_logprobs":[]}]},"finish_reason":"stop"},)"
      R"({"index":1,"logprobs" : null}],"logprobs":{"keep":1},"usage":{"prompt_tokens":3}})";
  const std::string out = strip_logprobs(body);
  CHECK(out ==
        R"({"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":"hi \"logprobs\": {}"},)"
        R"("logprobs":null,"finish_reason":"stop"},)"
        R"({"index":1,"logprobs" : null}],"logprobs":{"keep":1},"usage":{"prompt_tokens":3}})");
  const std::string chunk =
      R"({"choices":[{"delta":{"content":"x"},"logprobs":{"content":[{"token":"x","logprob":-1.5}]}}]})";
  CHECK(strip_logprobs(chunk) == R"({"choices":[{"delta":{"content":"x"},"logprobs":null}]})");
  CHECK(strip_logprobs("[DONE]") == "[DONE]");
  CHECK(strip_logprobs(R"({"choices":[{"logprobs":{"a":)") == R"({"choices":[{"logprobs":{"a":)");
  CHECK(strip_logprobs("") == "");
}
