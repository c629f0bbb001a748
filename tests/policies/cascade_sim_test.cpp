#include <doctest/doctest.h>

#include <vector>

#include "policies/cascade_sim.h"
#include "test_util.h"

using namespace frugal;
using namespace frugal::policies;

namespace {
Usage usage(int64_t in, int64_t out) {
  Usage u;
  u.input_tokens = in;
  u.output_tokens = out;
  u.reported = true;
  return u;
}
const double kConfident[] = {-0.1, -0.2, -1.0};  // mean -0.433, min -1.0
}  // namespace

TEST_CASE("a rejected tier still costs, the accepted tier sets the baseline") {
  auto pol = testing::example_policy();
  const RoutePlan& plan = *plan_route(*pol, "classify");
  std::vector<TierOutcome> o(2);
  o[0].answer.text = "positive";
  o[0].answer.has_logprobs = true;
  o[0].answer.token_logprobs = kConfident;  // mean -0.433 < -0.35: rejected
  o[0].usage = usage(1'000, 10);
  o[0].busy_us = 400'000;                   // 2.10 $/h × 0.4 s = 233.333 µ$ (to the picodollar)
  o[1].answer.text = "positive";
  o[1].answer.has_logprobs = true;
  o[1].answer.token_logprobs = kConfident;  // min -1.0 >= -2.0: accepted
  o[1].usage = usage(1'000, 10);            // 1000 × 0.15 + 10 × 0.60 = 156
  SimResult r = simulate_cascade(plan, pol->prices(), o);
  CHECK(r.accepted_tier == 1);
  REQUIRE(r.tiers.size() == 2);
  CHECK(r.tiers[0].verdict == TierVerdict::kRejected);
  CHECK(r.tiers[0].cost.total == Money::from_picos(233'333'333));  // was rounded to 233 µ$
  CHECK(*r.tiers[0].decision.score == doctest::Approx(-1.3 / 3));
  CHECK(r.tiers[1].verdict == TierVerdict::kAccepted);
  CHECK(r.tiers[1].cost.total == Money::from_micros(156));
  CHECK(r.total_cost == Money::from_picos(389'333'333));
  CHECK(r.baseline == Money::from_micros(2'600));  // gpt-4o: 1000 × 2.5 + 10 × 10
  CHECK(r.savings == Money::from_picos(2'210'666'667));
  CHECK(r.pricing_error.empty());
}

TEST_CASE("errors escalate, the last tier answers, missing logprobs reject") {
  auto pol = testing::example_policy();
  const RoutePlan& plan = *plan_route(*pol, "classify");
  std::vector<TierOutcome> o(3);
  o[0].error = true;
  o[0].error_message = "engine: out of memory";
  o[1].answer.text = "positive";  // no logprobs returned: the min_logprob rule rejects
  o[1].usage = usage(1'000, 10);
  o[2].answer.text = "positive";
  o[2].usage = usage(1'000, 10);
  SimResult r = simulate_cascade(plan, pol->prices(), o);
  CHECK(r.accepted_tier == 2);
  CHECK(r.tiers[0].verdict == TierVerdict::kError);
  CHECK(r.tiers[0].decision.reason == "engine: out of memory");
  CHECK(r.tiers[1].verdict == TierVerdict::kRejected);
  CHECK(r.tiers[1].decision.reason.find("backend returned none") != std::string::npos);
  CHECK(r.tiers[2].decision.reason == "no rule");
  CHECK(r.total_cost == Money::from_micros(0 + 156 + 2'600));
  CHECK(r.baseline == Money::from_micros(2'600));
  CHECK(r.savings == Money::from_micros(-156));  // the cascade cost more than going straight to gpt-4o
}

TEST_CASE("a last tier whose rule rejects still answers, with the reason recorded") {
  auto pol = testing::example_policy();
  const RoutePlan& plan = *plan_route(*pol, "extract");
  std::vector<TierOutcome> o(2);
  o[0].answer.text = "{}";  // no top-2 log-probs: margin rejects
  o[0].usage = usage(2'000, 100);
  o[1].answer.text = "not json";
  Usage u = usage(2'000, 100);
  u.cached_input_tokens = 1'000;
  o[1].usage = u;
  SimResult r = simulate_cascade(plan, pol->prices(), o);
  CHECK(r.accepted_tier == 1);
  CHECK(r.tiers[1].verdict == TierVerdict::kAccepted);
  CHECK(!r.tiers[1].decision.accepted);
  CHECK(r.tiers[1].decision.reason.rfind("last tier answers: json_parse", 0) == 0);
  // tier 0: 2000 × 0.15 + 100 × 0.6 = 360; tier 1: 1000 × 3 + 1000 × 0.3 + 100 × 15 = 4800
  CHECK(r.total_cost == Money::from_micros(5'160));
  CHECK(r.baseline == Money::from_micros(7'500));  // sonnet, all input as input: 2000 × 3 + 100 × 15
}

TEST_CASE("every tier failing: no answer, cost of what was billed, zero baseline") {
  auto pol = testing::example_policy();
  const RoutePlan& plan = *plan_route(*pol, "chat");
  std::vector<TierOutcome> o(1);
  o[0].error = true;
  o[0].usage = usage(500, 0);  // billed prompt before the upstream died: 500 × 0.15 = 75
  SimResult r = simulate_cascade(plan, pol->prices(), o);
  CHECK(r.accepted_tier == -1);
  CHECK(r.total_cost == Money::from_micros(75));
  CHECK(r.baseline == Money::from_micros(0));
  CHECK(r.savings == Money::from_micros(-75));
}

TEST_CASE("a cancelled stream: partial usage is billed, no tier answered") {
  auto pol = testing::example_policy();
  const RoutePlan& plan = *plan_route(*pol, "classify");
  std::vector<TierOutcome> o(2);
  o[0].answer.text = "I cannot";
  o[0].answer.has_logprobs = true;
  o[0].answer.token_logprobs = kConfident;
  o[0].busy_us = 3'600'000;  // 2.10 $/h × 3.6 s = 2100
  o[1].error = true;         // the client went away mid-stream
  o[1].error_message = "cancelled";
  o[1].usage = usage(1'000, 3);  // 150 + 1.8 µ$, exactly (was rounded to 152)
  SimResult r = simulate_cascade(plan, pol->prices(), o);
  CHECK(r.accepted_tier == -1);
  CHECK(r.tiers.size() == 2);
  CHECK(r.total_cost == Money::from_picos(2'251'800'000));  // 2100 + 151.8 µ$
}

TEST_CASE("a cache hit costs nothing, its baseline comes from the stored usage") {
  auto pol = testing::example_policy();
  const RoutePlan& plan = *plan_route(*pol, "classify");
  const SimResult r = simulate_cascade(plan, pol->prices(), {});  // no tier ran
  CHECK(r.tiers.empty());
  CHECK(r.total_cost == Money::from_micros(0));
  const Usage stored = usage(1'000, 10);
  const Money baseline = *pol->prices().baseline_of(plan.reference_model, stored);
  CHECK(baseline == Money::from_micros(2'600));
  CHECK((baseline - r.total_cost) == Money::from_micros(2'600));
}
