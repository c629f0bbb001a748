// frugal calibrate (router/calibrate.h) on synthetic logs whose optimum is known in
// closed form, and the honesty of its held-out figures.
#include "router/calibrate.h"

#include <doctest/doctest.h>

#include <random>

#include "replay_log_util.h"
#include "router/replay_run.h"

using namespace frugal;
using namespace frugal::testing;

namespace {

router::CalibrateOptions target(double acc) {
  router::CalibrateOptions o;
  o.target_accuracy = acc;
  return o;
}

// 100 qa requests: small is right on 70 (confidence 0.8 or 0.9) and wrong on 30
// (confidence 0.1 or 0.2); medium is right on 90 and records no confidence; large is
// always right.
backends::ReplayLog separable_log() {
  std::vector<std::string> lines;
  for (int i = 0; i < 100; ++i) {
    const bool small_right = i % 10 < 7;
    const double conf = small_right ? (i % 2 ? 0.9 : 0.8) : (i % 2 ? 0.2 : 0.1);
    lines.push_back(qa_line(std::to_string(i), {{"small", small_right, conf},
                                                {"medium", i % 10 != 9, std::nullopt},
                                                {"large", true, std::nullopt}}));
  }
  return log_of(lines);
}

const Money kSmall = Money::from_picos(120'000'000);    // $0.00012
const Money kMedium = Money::from_picos(360'000'000);   // $0.00036
const Money kLarge = Money::from_picos(1'200'000'000);  // $0.0012

Money times(Money m, int n) { return Money::from_picos(m.picos() * n); }

}  // namespace

TEST_CASE("calibrate: confidence separating right from wrong picks the cascade with the lowest separating threshold") {
  auto policy = compile(kReplayPolicy);
  const auto r = router::calibrate(*policy, separable_log(), target(1.0));
  REQUIRE(r.types.size() == 1);
  const auto& t = r.types[0];
  REQUIRE(t.skipped.empty());
  CHECK(t.models == std::vector<std::string>{"large", "medium", "small"});
  CHECK(t.chosen.models == std::vector<std::string>{"small", "large"});
  REQUIRE(t.chosen.thresholds.size() == 1);
  CHECK(t.chosen.thresholds[0] == doctest::Approx(0.8));
  CHECK(t.goal_met);
  // Every request tries small; the 30 it gets wrong go on to large.
  CHECK(t.insample.cost == times(kSmall, 100) + times(kLarge, 30));
  CHECK(t.insample.correct == 100);
  // The separation holds in every fold: the held-out figures equal the closed form.
  CHECK(t.heldout.rows == 100);
  CHECK(t.heldout.correct == 100);
  CHECK(t.heldout.cost == times(kSmall, 100) + times(kLarge, 30));
  CHECK(t.reference.cost == times(kLarge, 100));
  CHECK(t.reference.correct == 100);
  CHECK(r.heldout.cost == t.heldout.cost);
}

TEST_CASE("calibrate: relative targets (ref-Npp) are measured against the reference on the same rows") {
  auto policy = compile(kReplayPolicy);
  router::CalibrateOptions o;
  o.below_reference = 0.10;  // ref-10pp: 90%
  const auto r = router::calibrate(*policy, separable_log(), o);
  const auto& t = r.types[0];
  CHECK(t.target == doctest::Approx(0.90));
  // small (>= 0.8) > medium: small's 30 misses go to medium, right on 20 of them: 90
  // right for 100 x 0.00012 + 30 x 0.00036 = 0.0228 — cheaper than medium alone
  // (0.036, 90 right) and than small (>= 0.8) > large (0.048, 100 right).
  CHECK(t.chosen.models == std::vector<std::string>{"small", "medium"});
  REQUIRE(t.chosen.thresholds.size() == 1);
  CHECK(t.chosen.thresholds[0] == doctest::Approx(0.8));
  CHECK(t.insample.cost == times(kSmall, 100) + times(kMedium, 30));
  CHECK(t.insample.correct == 90);
}

TEST_CASE("calibrate: a small model that is never right is never in the chosen cascade") {
  auto policy = compile(kReplayPolicy);
  std::vector<std::string> lines;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  for (int i = 0; i < 60; ++i)
    lines.push_back(qa_line(std::to_string(i), {{"small", false, u(rng)}, {"large", true, std::nullopt}}));
  const auto r = router::calibrate(*policy, log_of(lines), target(0.95));
  const auto& t = r.types[0];
  CHECK(t.chosen.models == std::vector<std::string>{"large"});
  CHECK(t.insample.cost == t.reference.cost);
  CHECK(t.heldout.cost == t.reference.cost);
  CHECK(t.heldout.correct == 60);
  for (const auto& f : t.fold_choices) CHECK(f.models == std::vector<std::string>{"large"});
}

TEST_CASE("calibrate: of two models with equal accuracy the cheaper one stands alone") {
  auto policy = compile(kReplayPolicy);
  std::vector<std::string> lines;
  for (int i = 0; i < 50; ++i)  // both right on 80%, on different requests; no confidences
    lines.push_back(qa_line(std::to_string(i), {{"small", i % 5 != 0, std::nullopt}, {"large", i % 5 != 1, std::nullopt}}));
  auto log = log_of(lines);
  const auto r = router::calibrate(*policy, log, target(0.8));
  CHECK(r.types[0].chosen.models == std::vector<std::string>{"small"});
  CHECK(r.types[0].insample.correct == 40);
  // The same in cost mode: the most accurate within small's cost is small.
  router::CalibrateOptions o;
  o.goal = router::CalibrateOptions::Goal::kMaxCost;
  o.max_cost_per_request = kSmall;
  const auto c = router::calibrate(*policy, log, o);
  CHECK(c.types[0].chosen.models == std::vector<std::string>{"small"});
  CHECK(c.types[0].goal_met);
}

TEST_CASE("calibrate: held-out figures are out-of-fold, and a random-confidence log shows no in-sample optimism") {
  // small is right half the time and its confidence says nothing; large is always right.
  // Any threshold's in-sample edge is noise, which held-out rows do not share.
  auto policy = compile(kReplayPolicy);
  std::vector<std::string> lines;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);
  for (int i = 0; i < 400; ++i)
    lines.push_back(qa_line(std::to_string(i), {{"small", u(rng) < 0.5, u(rng)}, {"large", true, std::nullopt}}));
  auto log = log_of(lines);
  const auto r = router::calibrate(*policy, log, target(0.9));
  const auto& t = r.types[0];
  REQUIRE(t.skipped.empty());
  CHECK(t.folds == 5);
  CHECK(t.insample.accuracy() >= 0.9);
  CHECK(t.heldout.accuracy() < t.insample.accuracy());

  // Recompute the held-out figures independently: each row scored by the cascade
  // searched without its fold.
  REQUIRE(t.fold_choices.size() == 5);
  REQUIRE(t.row_records.size() == 400);
  router::CalibFigures again;
  std::vector<int> fold_sizes(5, 0);
  for (size_t i = 0; i < t.row_records.size(); ++i) {
    const int f = t.row_fold[i];
    ++fold_sizes[static_cast<size_t>(f)];
    auto o = router::evaluate_cascade(policy->prices(), t.fold_choices[static_cast<size_t>(f)],
                                      log.records[t.row_records[i]]);
    REQUIRE(o);
    ++again.rows;
    again.correct += o->correct ? 1 : 0;
    again.cost += o->cost;
  }
  for (int n : fold_sizes) CHECK(n == 80);
  CHECK(again.correct == t.heldout.correct);
  CHECK(again.cost == t.heldout.cost);
}

TEST_CASE("calibrate: the chosen cascade is never costlier than the cheapest single model meeting the target") {
  auto policy = compile(kReplayPolicy);
  std::vector<std::string> lines;
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  for (int i = 0; i < 200; ++i) {
    const double c = u(rng);
    lines.push_back(qa_line(std::to_string(i), {{"small", u(rng) < c, c},
                                                {"medium", u(rng) < 0.93, u(rng)},
                                                {"large", u(rng) < 0.97, std::nullopt}}));
  }
  auto log = log_of(lines);
  const auto r = router::calibrate(*policy, log, target(0.9));
  const auto& t = r.types[0];
  CHECK(t.goal_met);
  for (const char* m : {"small", "medium", "large"}) {
    router::CascadeChoice single{{m}, {}};
    router::CalibFigures f;
    for (size_t ri : t.row_records) {
      auto o = router::evaluate_cascade(policy->prices(), single, log.records[ri]);
      ++f.rows;
      f.correct += o->correct;
      f.cost += o->cost;
    }
    if (f.accuracy() >= 0.9) CHECK(t.insample.cost <= f.cost);
  }
}

TEST_CASE("calibrate: records without a label of a considered model are excluded and counted") {
  auto policy = compile(kReplayPolicy);
  auto log = separable_log();
  auto extra = log_of({qa_line("x", {{"small", std::nullopt, 0.5}, {"large", true, std::nullopt}})});
  log.records.push_back(extra.records[0]);
  router::CalibrateOptions o = target(1.0);
  o.models = {"small", "large"};
  const auto r = router::calibrate(*policy, log, o);
  CHECK(r.types[0].excluded == 1);
  CHECK(r.types[0].insample.rows == 100);
  CHECK(r.types[0].models == std::vector<std::string>{"small", "large"});
}

TEST_CASE("calibrate: the replayed calibrated cascade costs what calibrate said in-sample") {
  // One code path: the thresholds calibrate found, put in a policy and replayed through
  // the cascade executor, reproduce its in-sample figures exactly.
  auto log = separable_log();
  auto policy = compile(kReplayPolicy);
  const auto r = router::calibrate(*policy, log, target(1.0));
  const auto& t = r.types[0];
  auto written = compile(std::string(kReplayPolicy).replace(std::string(kReplayPolicy).find("min: 0.5"), 8, "min: 0.8"));
  const auto rep = router::run_replay(*written, log);
  CHECK(rep.types[0].policy.cost == t.insample.cost);
  CHECK(rep.types[0].policy.correct == t.insample.correct);
}
