#pragma once
// A pure cascade simulator: given a route plan and what each tier did (answer, usage,
// error), decide which tier's answer stands and what the request cost. The live
// executor (router/) follows the same rules, one tier at a time; tests run this on
// hand-made outcomes. (`frugal replay` runs the live executor itself over recorded
// outcomes: router/replay_run.h.)
//
// Rules: tiers run in order. A tier that errored costs what it billed (partial usage)
// and escalates. A tier whose rule rejects costs its usage and escalates. The first
// tier whose rule accepts, or that has no rule, answers. The last tier answers
// whenever it produced an answer, whatever its rule says (its rule is still evaluated
// so the ledger shows the score). Outcomes beyond the ones given are "not tried".
//
// Baseline: the reference model's price on the answering tier's usage (see
// prices.h for how token classes are treated). When no tier answered the baseline
// is 0: a request that failed would have failed at the reference model's price of
// nothing we can know, so savings are then −cost.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.h"
#include "core/usage.h"
#include "policies/acceptance.h"
#include "policies/policy.h"
#include "policies/prices.h"

namespace frugal::policies {

struct TierOutcome {
  bool error = false;         // the backend failed or was cut; `answer` is ignored
  std::string_view error_message;
  AnswerView answer;
  Usage usage;                // billed usage (partial for an error or a cancelled stream)
  int64_t busy_us = 0;        // measured busy time, for GPU-hour-priced models
};

enum class TierVerdict { kAccepted, kRejected, kError };

struct SimTier {
  std::string_view model;  // points into the plan
  TierVerdict verdict = TierVerdict::kError;
  Decision decision;       // empty for errors and rule-less tiers
  TierCost cost;
};

struct SimResult {
  int accepted_tier = -1;  // index into plan.tiers, -1 when no tier answered
  std::vector<SimTier> tiers;  // one per tier tried
  Money total_cost;
  Money baseline;
  Money savings;  // baseline − total_cost (negative when the cascade cost more)
  std::string pricing_error;  // non-empty when a model had no price (its cost counted as 0)
};

SimResult simulate_cascade(const RoutePlan& plan, const PriceTable& prices,
                           std::span<const TierOutcome> outcomes);

}  // namespace frugal::policies
