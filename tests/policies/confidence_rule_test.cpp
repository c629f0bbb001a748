// The `confidence: {min: X}` acceptance rule (policies/acceptance.h): a recorded
// confidence, else exp(mean token log-prob); missing input rejects, saying why.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "policies/acceptance.h"
#include "test_util.h"

using namespace frugal::policies;

namespace {

const AcceptRule& confidence_rule(const std::string& min) {
  static std::vector<std::shared_ptr<const CompiledPolicy>> keep;
  keep.push_back(frugal::policies::testing::compile_text(
      "prices:\n  m: { input: 1, output: 1 }\nrequest_types:\n  - name: chat\nroutes:\n  chat:\n    cascade:\n"
      "      - model: m\n        accept: { confidence: { min: " + min + " } }\n      - model: m\n"));
  return *plan_route(*keep.back(), "chat")->tiers[0].rule;
}

}  // namespace

TEST_CASE("confidence rule: recorded confidence, else exp(mean log-prob), else rejected") {
  const AcceptRule& r = confidence_rule("0.5");
  CHECK(r.needs_logprobs());  // live, the gateway asks for log-probs
  AnswerView a;
  a.text = "x";
  a.recorded_confidence = 0.5;
  Decision d = r.evaluate(a);
  CHECK(d.accepted);
  CHECK(*d.score == doctest::Approx(0.5));

  AnswerView lp;
  lp.text = "x";
  lp.has_logprobs = true;
  const std::vector<double> tokens{-0.5, -1.0};  // exp(-0.75) = 0.472 < 0.5
  lp.token_logprobs = tokens;
  d = r.evaluate(lp);
  CHECK_FALSE(d.accepted);
  CHECK(*d.score == doctest::Approx(std::exp(-0.75)));
  CHECK(d.reason == "confidence 0.472 < 0.500");

  AnswerView none;
  none.text = "x";
  d = r.evaluate(none);
  CHECK_FALSE(d.accepted);
  CHECK(d.reason.find("confidence needs a recorded confidence or token log-probabilities") == 0);

  CHECK(answer_confidence(std::nullopt, {}) == std::nullopt);
  CHECK(*answer_confidence(0.3, tokens) == doctest::Approx(0.3));
}

TEST_CASE("confidence rule: the threshold must be in [0, 1]") {
  auto cfg = frugal::config::load_policy_text(
      "prices:\n  m: { input: 1, output: 1 }\nrequest_types:\n  - name: chat\nroutes:\n  chat:\n    cascade:\n"
      "      - model: m\n        accept: { confidence: { min: 1.5 } }\n      - model: m\n",
      "p.yaml");
  REQUIRE_FALSE(cfg);
  CHECK(cfg.error().message.find("expected a confidence in [0, 1]") != std::string::npos);
}
