#pragma once
// `frugal replay`: a policy run over recorded outcomes (backends/replay/replay_log.h)
// by the live request path's own parts — request facts and classification
// (policies/), the route plan, budgets (BudgetTracker on a clock set to each record's
// time), the cascade executor (router/cascade.h: dispatch, log-probs, acceptance
// rules, verifiers) over the `replay` backend, and the price table — then tallied per
// request type. The same figures are computed for always-the-reference (every request
// answered by the route's reference model, as recorded).
//
// Costs are exact (Money). A candidate's recorded cost_usd wins over pricing its
// usage. The baseline is the live one: the reference model's price on the answer's
// tokens (policies/prices.h), or the reference's recorded cost when the answer has no
// usage.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/replay/replay_log.h"
#include "core/money.h"
#include "policies/policy.h"

namespace frugal::router {

struct ReplayTierStats {
  std::string model;
  int64_t tried = 0;
  int64_t accepted = 0;  // answered (for the last tier: every answer)
  int64_t rejected = 0;  // its rule said no: escalated
  int64_t errors = 0;    // no recorded outcome, or an unusable answer: escalated (or failed)
  Money cost;
};

struct ReplayFigures {
  int64_t requests = 0;
  int64_t answered = 0;
  int64_t labelled = 0;  // answered by a model whose outcome carries a label
  int64_t correct = 0;
  Money cost;
  std::optional<double> accuracy() const {
    if (labelled == 0) return std::nullopt;
    return static_cast<double>(correct) / static_cast<double>(labelled);
  }
};

struct ReplayTypeReport {
  std::string request_type;
  std::string reference_model;
  bool routed = false;         // the policy has a route for this type
  ReplayFigures policy;        // the policy as replayed
  int64_t failed = 0;          // no answer (the last tier had no recorded outcome, ...)
  int64_t denied = 0;          // refused by a hard budget
  Money baseline;
  std::vector<ReplayTierStats> tiers;  // per tier of the route, in order
  ReplayFigures reference;     // always the reference model
  int64_t reference_missing = 0;  // requests without a recorded outcome of the reference
  std::vector<std::string> pricing_errors;  // distinct, at most a few
};

struct ReplayReport {
  std::vector<ReplayTypeReport> types;  // in the policy's request-type order
  ReplayTypeReport overall;             // tiers empty
  std::vector<std::string> errors;      // records the router could not read ("line N: ...")
};

struct ReplayOptions {
  bool budgets = true;  // apply the policy's budgets (BudgetTracker, clock = record ts)
  bool reclassify = false;  // classify every record from its request, even with a recorded type
};

// The request type of a record: its recorded request_type when the policy knows that
// type (captured traffic records how it was classified) unless `reclassify`; otherwise
// the same classification the gateway runs — the request's facts (its body, headers,
// team, key) through policies::classify (the default type for a record without a
// request). kInvalidRequest when the request body is not a valid chat request.
Result<std::string> classify_record(const policies::CompiledPolicy& policy, const backends::ReplayRecord& r,
                                    bool reclassify = false);

ReplayReport run_replay(const policies::CompiledPolicy& policy, const backends::ReplayLog& log,
                        const ReplayOptions& opts = {});

}  // namespace frugal::router
