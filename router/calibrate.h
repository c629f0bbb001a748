#pragma once
// `frugal calibrate`: FrugalGPT's search over recorded outcomes. Per request type with
// a route, over every ordered list of 1..max_tiers distinct candidate models (a single
// model is "no cascade") and, for every tier but the last, a `confidence: {min: t}`
// threshold taken from that model's recorded confidences (all distinct values, or
// evenly spaced quantiles of them when there are more than the depth allows: 256 for
// two tiers, 32 for three, 10 for four), it finds the cheapest cascade whose accuracy
// meets the target (or the most accurate within a cost). Since single models are in
// the search, the answer is never costlier than the cheapest single model that meets
// the target on the same rows.
//
// Honesty: the rows are split into K folds (a seeded shuffle); for each fold the
// search runs on the other folds and its choice is scored on the held-out fold. The
// held-out figures are the sum of those out-of-fold scores: they measure the whole
// procedure (search included) on requests it did not see. The policy reported is the
// search run on every row; its in-sample figures are reported separately.
//
// A row is a record of the type with a labelled, costed outcome of every model
// considered and of the reference; other records are counted as excluded. Confidence
// is policies::answer_confidence (the recorded one, else from recorded log-probs),
// exactly what the `confidence` rule reads; a model without one never accepts. Costs
// are exact (Money).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/replay/replay_log.h"
#include "core/money.h"
#include "policies/policy.h"

namespace frugal::router {

struct CalibrateOptions {
  enum class Goal { kTargetAccuracy, kMaxCost };
  Goal goal = Goal::kTargetAccuracy;
  double target_accuracy = 0;  // kTargetAccuracy, absolute (0..1)
  // kTargetAccuracy relative to the reference (`ref-0.5pp`): reference accuracy minus
  // this (0.005), measured on the rows the search sees.
  std::optional<double> below_reference;
  Money max_cost_per_request;  // kMaxCost: mean cost per request
  int folds = 5;
  std::vector<std::string> models;  // empty: every model recorded in all of a type's records
  int max_tiers = 3;                // 1..4
  uint64_t seed = 1;
  bool keep_points = false;         // every candidate cascade on all rows (for the plot)
  bool reclassify = false;          // see classify_record (router/replay_run.h)
};

struct CascadeChoice {
  std::vector<std::string> models;  // in tier order
  std::vector<double> thresholds;   // models.size() - 1: tier i accepts when confidence >= thresholds[i]
};

struct CalibFigures {
  int64_t rows = 0;
  int64_t correct = 0;
  Money cost;
  double accuracy() const { return rows ? static_cast<double>(correct) / static_cast<double>(rows) : 0.0; }
};

struct CalibPoint {
  CascadeChoice cascade;
  CalibFigures figures;  // on all rows
};

struct CalibrateTypeResult {
  std::string request_type;
  std::string reference_model;
  std::vector<std::string> models;  // considered
  std::string skipped;              // non-empty: not calibrated, and why
  int64_t excluded = 0;             // records of the type that are not rows
  int folds = 0;                    // folds used (fewer than asked when rows are few)
  double target = 0;                // kTargetAccuracy: the absolute target on all rows
  bool goal_met = false;            // the chosen cascade meets the goal in-sample
  CascadeChoice chosen;             // searched on all rows
  CalibFigures insample;            // `chosen` on all rows
  CalibFigures heldout;             // out-of-fold, summed over the folds
  CalibFigures reference;           // always the reference, on all rows
  std::vector<CascadeChoice> fold_choices;  // per fold: searched without it
  std::vector<size_t> row_records;  // the log record index of each row
  std::vector<int> row_fold;        // the fold of each row
  std::vector<CalibPoint> points;   // keep_points only
};

struct CalibrateResult {
  std::vector<CalibrateTypeResult> types;  // routed types with records, in policy order
  CalibFigures heldout;    // over every calibrated type
  CalibFigures reference;
  std::vector<std::string> errors;  // records that could not be classified
};

CalibrateResult calibrate(const policies::CompiledPolicy& policy, const backends::ReplayLog& log,
                          const CalibrateOptions& opts);

// Whether `c` answers correctly, and at what cost, on one record (tiers in order; a
// tier accepts when the model's confidence >= its threshold; the last answers). Used
// for the held-out scoring; nullopt when a model has no costed, labelled outcome.
struct RowOutcome {
  bool correct = false;
  Money cost;
};
std::optional<RowOutcome> evaluate_cascade(const policies::PriceTable& prices, const CascadeChoice& c,
                                           const backends::ReplayRecord& r);

}  // namespace frugal::router
