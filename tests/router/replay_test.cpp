// frugal replay (router/replay_run.h) over hand-made logs: the real cascade executor,
// acceptance rules, prices and budgets through the replay backend.
#include "router/replay_run.h"

#include <doctest/doctest.h>

#include "backends/replay/replay_backend.h"
#include "replay_log_util.h"
#include "router/tier_answer.h"

using namespace frugal;
using namespace frugal::testing;

TEST_CASE("replay log: fields, unknown fields ignored, bad lines reported with their line numbers") {
  auto log = log_of({
      R"({"id":"a","request_type":"qa","future_field":{"x":1},"candidates":{"small":{"answer":"hi","correct":true,"usage":{"input_tokens":5,"output_tokens":2,"cached_input_tokens":1},"logprobs":[["h",-0.1,[["h",-0.1],["x",-2.5]]],["i",-0.3]],"confidence":0.7,"latency_ms":12,"whatever":1}}})",
      "",
      R"({"id":"b","candidates":{}})",
      R"(not json)",
      R"({"id":"c","candidates":{"small":{"answer":"x","correct":"yes","usage":{"input_tokens":1}}}})",
      R"({"id":"d","candidates":{"small":{"answer":"x"}}})",
      R"({"id":"e","candidates":{"small":{"cost_usd":0.000123456789,"confidence":1.5}}})",
      R"({"id":"f","candidates":{"small":{"cost_usd":0.000123456789,"correct":null}}})",
  });
  REQUIRE(log.records.size() == 2);
  const auto& a = log.records[0];
  CHECK(a.line == 1);
  CHECK(a.request_type == "qa");
  REQUIRE(a.candidates.size() == 1);
  const auto& c = a.candidates[0];
  CHECK(c.answer == "hi");
  CHECK(c.correct == true);
  CHECK(c.usage->input_tokens == 5);
  CHECK(c.usage->cached_input_tokens == 1);
  REQUIRE(c.logprobs.size() == 2);
  CHECK(c.logprobs[0].top.size() == 2);
  CHECK(c.confidence == doctest::Approx(0.7));
  CHECK(c.latency_ms == doctest::Approx(12));
  CHECK(log.records[1].line == 8);
  CHECK(log.records[1].candidates[0].cost_usd->to_usd_string() == "0.000123456789");
  CHECK_FALSE(log.records[1].candidates[0].correct.has_value());
  REQUIRE(log.errors.size() == 5);
  CHECK(log.errors[0].rfind("line 3: candidates", 0) == 0);
  CHECK(log.errors[1].rfind("line 4: not JSON", 0) == 0);
  CHECK(log.errors[2] == "line 5: candidates.small.correct: expected true, false or null");
  CHECK(log.errors[3] == "line 6: candidates.small: needs usage or cost_usd");
  CHECK(log.errors[4] == "line 7: candidates.small.confidence: expected a number in [0, 1]");
}

TEST_CASE("replay backend: the body the live path parses carries text, usage, log-probs and confidence") {
  auto log = log_of({R"({"id":"a","candidates":{"m":{"answer":"hi \"x\"","usage":{"input_tokens":5,"output_tokens":2},"logprobs":[["h",-0.5,[["h",-0.5],["x",-1.5]]]],"confidence":0.25}}})"});
  REQUIRE(log.records.size() == 1);
  auto a = router::parse_tier_answer(backends::completion_of(log.records[0].candidates[0]));
  REQUIRE(a);
  CHECK(a->text == "hi \"x\"");
  CHECK(a->usage.input_tokens == 5);
  CHECK(a->usage.output_tokens == 2);
  REQUIRE(a->token_logprobs.size() == 1);
  CHECK(a->token_logprobs[0] == doctest::Approx(-0.5));
  REQUIRE(a->top2.size() == 1);
  CHECK(a->recorded_confidence == doctest::Approx(0.25));
}

TEST_CASE("replay: the cascade per request type with acceptance, escalation, cost, baseline and accuracy") {
  auto policy = compile(kReplayPolicy);
  auto log = log_of({
      qa_line("1", {{"small", true, 0.9}, {"large", true, std::nullopt}}),   // accepted at small
      qa_line("2", {{"small", false, 0.2}, {"large", true, std::nullopt}}),  // escalated
      qa_line("3", {{"small", false, 0.6}, {"large", true, std::nullopt}}),  // accepted, wrong
      // No request: its recorded type, which has no route: the first candidate answers.
      R"({"id":"4","request_type":"chat","candidates":{"medium":{"correct":true,"usage":{"input_tokens":100,"output_tokens":10}}}})",
  });
  REQUIRE(log.errors.empty());
  const auto r = router::run_replay(*policy, log);
  REQUIRE(r.errors.empty());
  REQUIRE(r.types.size() == 2);
  const auto& qa = r.types[0];
  CHECK(qa.request_type == "qa");
  CHECK(qa.routed);
  CHECK(qa.policy.requests == 3);
  CHECK(qa.policy.answered == 3);
  REQUIRE(qa.tiers.size() == 2);
  CHECK(qa.tiers[0].tried == 3);
  CHECK(qa.tiers[0].accepted == 2);
  CHECK(qa.tiers[0].rejected == 1);
  CHECK(qa.tiers[1].tried == 1);
  CHECK(qa.tiers[1].accepted == 1);
  CHECK(usd(qa.policy.cost) == "0.001560");  // 3 x 0.00012 + 0.0012
  CHECK(usd(qa.baseline) == "0.003600");      // large on every answer's tokens
  CHECK(qa.policy.correct == 2);
  CHECK(qa.policy.labelled == 3);
  CHECK(usd(qa.reference.cost) == "0.003600");
  CHECK(qa.reference.correct == 3);
  const auto& chat = r.types[1];
  CHECK(chat.request_type == "chat");
  CHECK_FALSE(chat.routed);
  CHECK(usd(chat.policy.cost) == "0.000360");
  CHECK(usd(chat.baseline) == "0.000360");  // uncascaded: nothing saved, as live
  CHECK(r.overall.policy.requests == 4);
  CHECK(usd(r.overall.policy.cost) == "0.001920");
}

TEST_CASE("replay: a confidence rule reads log-probs when no confidence was recorded") {
  auto policy = compile(kReplayPolicy);
  // exp(mean(-0.1, -0.3)) = 0.82 >= 0.5: accepted; exp(-2) = 0.14: escalated.
  auto log = log_of({
      qa_line("1", {{"small", true, std::nullopt, "a", R"("logprobs":[["a",-0.1],["b",-0.3]])"}, {"large", true, {}}}),
      qa_line("2", {{"small", true, std::nullopt, "a", R"("logprobs":[["a",-2.0]])"}, {"large", true, {}}}),
      qa_line("3", {{"small", true, std::nullopt}, {"large", true, {}}}),  // neither: escalated
  });
  const auto r = router::run_replay(*policy, log);
  REQUIRE(r.types.size() == 1);
  CHECK(r.types[0].tiers[0].accepted == 1);
  CHECK(r.types[0].tiers[0].rejected == 2);
  CHECK(r.types[0].tiers[1].accepted == 2);
}

TEST_CASE("replay: other acceptance rules run as live (json_parse), and missing outcomes escalate or fail") {
  auto policy = compile(std::string(kReplayPolicy).replace(std::string(kReplayPolicy).find("{ confidence: { min: 0.5 } }"),
                                                            28, "{ json_parse: true }"));
  auto log = log_of({
      qa_line("1", {{"small", true, {}, "{}"}, {"large", true, {}}}),
      qa_line("2", {{"small", true, {}, "not json"}, {"large", false, {}}}),
      qa_line("3", {{"large", true, {}}}),  // no small outcome: an error at tier 1, escalated
      qa_line("4", {{"small", true, {}, "x"}}),  // rejected, and no large outcome: failed
  });
  const auto r = router::run_replay(*policy, log);
  REQUIRE(r.types.size() == 1);
  const auto& qa = r.types[0];
  CHECK(qa.tiers[0].accepted == 1);
  CHECK(qa.tiers[0].rejected == 2);
  CHECK(qa.tiers[0].errors == 1);
  CHECK(qa.tiers[1].tried == 3);
  CHECK(qa.tiers[1].accepted == 2);
  CHECK(qa.tiers[1].errors == 1);
  CHECK(qa.failed == 1);
  CHECK(qa.policy.answered == 3);
  CHECK(qa.policy.correct == 2);
  CHECK(qa.reference_missing == 1);
}

TEST_CASE("replay: recorded cost_usd wins over pricing and stays exact to the picodollar") {
  auto policy = compile(kReplayPolicy);
  auto log = log_of({qa_line("1", {{"small", true, 0.9, "a", R"("cost_usd":0.000000123456)"},
                                   {"large", true, {}, "a", R"("cost_usd":0.01)"}})});
  REQUIRE(log.errors.empty());
  const auto r = router::run_replay(*policy, log);
  CHECK(usd(r.types[0].policy.cost) == "0.000000123456");
  CHECK(usd(r.types[0].reference.cost) == "0.010000");
  CHECK(usd(r.types[0].baseline) == "0.010000");  // no usage on the answer: the reference's recorded cost
}

TEST_CASE("replay: budgets deny once the hard limit is spent, in the record's time window") {
  auto policy = compile(std::string(kReplayPolicy) + "budgets:\n  - { scope: global, per: day, hard: 0.0025 }\n");
  std::vector<std::string> lines;
  // Every request escalates: 0.00132 each. The limit is crossed by the 2nd; the 3rd is
  // denied; the 4th is on the next day (ts) and served.
  for (int i = 0; i < 4; ++i) {
    std::string l = qa_line(std::to_string(i), {{"small", true, 0.1}, {"large", true, {}}});
    l.insert(1, "\"ts\":" + std::to_string(i < 3 ? 1'700'000'000 + i : 1'700'000'000 + 86'400) + ",");
    lines.push_back(l);
  }
  const auto r = router::run_replay(*policy, log_of(lines));
  REQUIRE(r.types.size() == 1);
  CHECK(r.types[0].denied == 1);
  CHECK(r.types[0].policy.answered == 3);
  router::ReplayOptions no_budgets;
  no_budgets.budgets = false;
  CHECK(router::run_replay(*policy, log_of(lines), no_budgets).types[0].denied == 0);
}

TEST_CASE("replay: a request body that is not a chat request is reported with its line") {
  auto policy = compile(kReplayPolicy);
  auto log = log_of({R"({"id":"1","request":{"messages":"nope"},"candidates":{"large":{"usage":{"input_tokens":1}}}})"});
  REQUIRE(log.errors.empty());
  const auto r = router::run_replay(*policy, log);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].rfind("line 1: request: ", 0) == 0);
}

TEST_CASE("replay: a recorded request_type is kept unless --reclassify, which classifies from the request") {
  auto policy = compile(kReplayPolicy);
  std::string line = qa_line("1", {{"small", true, 0.9}, {"large", true, {}}});
  line.insert(1, R"("request_type":"chat",)");
  auto log = log_of({line});
  auto r = router::run_replay(*policy, log);
  REQUIRE(r.types.size() == 1);
  CHECK(r.types[0].request_type == "chat");
  router::ReplayOptions o;
  o.reclassify = true;
  r = router::run_replay(*policy, log, o);
  REQUIRE(r.types.size() == 1);
  CHECK(r.types[0].request_type == "qa");
  // A recorded type the policy does not know: classified from the request.
  std::string unknown = qa_line("2", {{"small", true, 0.9}, {"large", true, {}}});
  unknown.insert(1, R"("request_type":"gone",)");
  CHECK(router::run_replay(*policy, log_of({unknown})).types[0].request_type == "qa");
}
