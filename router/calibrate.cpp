#include "router/calibrate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <unordered_map>

#include "router/cascade.h"
#include "router/replay_run.h"

namespace frugal::router {

namespace {

constexpr double kNoConfidence = -std::numeric_limits<double>::infinity();

// Threshold candidates per tier, by cascade depth: the search over a depth-k cascade
// scores (Q_k)^(k-1) threshold tuples.
int thresholds_for_depth(int k) { return k <= 2 ? 256 : k == 3 ? 32 : 10; }

// Per row and model: exact cost, label, confidence.
struct Table {
  size_t models = 0;
  std::vector<int128_t> cost;  // picodollars
  std::vector<uint8_t> correct;
  std::vector<double> conf;    // kNoConfidence when none
  size_t at(size_t row, size_t model) const { return row * models + model; }
};

struct Score {
  int128_t cost = 0;
  int64_t correct = 0;
  int tiers = 0;
};

struct Goal {
  bool target_mode = true;
  int64_t need_correct = 0;  // target mode
  int128_t max_cost = 0;     // cost mode: total over the rows
};

bool feasible(const Goal& g, const Score& s) {
  return g.target_mode ? s.correct >= g.need_correct : s.cost <= g.max_cost;
}

// Whether `a` is a better choice than `b` under `g`.
bool better(const Goal& g, const Score& a, const Score& b) {
  const bool fa = feasible(g, a), fb = feasible(g, b);
  if (fa != fb) return fa;
  if (g.target_mode == fa) {  // feasible in target mode, or infeasible in cost mode: cheapest
    if (a.cost != b.cost) return a.cost < b.cost;
    if (a.correct != b.correct) return a.correct > b.correct;
  } else {  // most accurate
    if (a.correct != b.correct) return a.correct > b.correct;
    if (a.cost != b.cost) return a.cost < b.cost;
  }
  return a.tiers < b.tiers;
}

struct Choice {
  std::vector<int> order;
  std::vector<double> thresholds;
  Score score;
  bool set = false;
};

std::vector<double> threshold_candidates(const Table& t, const std::vector<size_t>& rows, size_t model, int q) {
  std::vector<double> v;
  v.reserve(rows.size());
  for (size_t r : rows) {
    const double c = t.conf[t.at(r, model)];
    if (c != kNoConfidence) v.push_back(c);
  }
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  if (static_cast<int>(v.size()) <= q) return v;
  std::vector<double> out;
  for (int i = 0; i < q; ++i) out.push_back(v[static_cast<size_t>(std::llround(static_cast<double>(i) * static_cast<double>(v.size() - 1) / (q - 1)))]);
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

struct Cell {
  int levels[3] = {0, 0, 0};
  int128_t cum_cost[4] = {0, 0, 0, 0};  // cost when tier p answers: tiers 0..p tried
  int64_t correct[4] = {0, 0, 0, 0};
};

class Search {
 public:
  Search(const Table& t, const std::vector<size_t>& rows, const Goal& g, int max_tiers,
         const std::vector<std::string>& names, std::vector<CalibPoint>* points)
      : t_(t), rows_(rows), goal_(g), max_tiers_(max_tiers), names_(names), points_(points) {}

  Choice run() {
    std::vector<int> order;
    std::vector<bool> used(t_.models, false);
    extend(order, used);
    return best_;
  }

 private:
  void extend(std::vector<int>& order, std::vector<bool>& used) {
    if (!order.empty()) score_order(order);
    if (static_cast<int>(order.size()) >= max_tiers_) return;
    for (size_t m = 0; m < t_.models; ++m) {
      if (used[m]) continue;
      used[m] = true;
      order.push_back(static_cast<int>(m));
      extend(order, used);
      order.pop_back();
      used[m] = false;
    }
  }

  void offer(const std::vector<int>& order, const std::vector<double>& thr, const Score& s) {
    if (points_) {
      CalibPoint p;
      for (int m : order) p.cascade.models.push_back(names_[static_cast<size_t>(m)]);
      p.cascade.thresholds = thr;
      p.figures.rows = static_cast<int64_t>(rows_.size());
      p.figures.correct = s.correct;
      p.figures.cost = Money::from_picos(s.cost);
      points_->push_back(std::move(p));
    }
    if (!best_.set || better(goal_, s, best_.score)) {
      best_.order = order;
      best_.thresholds = thr;
      best_.score = s;
      best_.set = true;
    }
  }

  void score_order(const std::vector<int>& order) {
    const int k = static_cast<int>(order.size());
    if (k == 1) {
      Score s{0, 0, 1};
      const size_t m = static_cast<size_t>(order[0]);
      for (size_t r : rows_) {
        s.cost += t_.cost[t_.at(r, m)];
        s.correct += t_.correct[t_.at(r, m)];
      }
      offer(order, {}, s);
      return;
    }
    const int q = thresholds_for_depth(k);
    std::vector<std::vector<double>> thr(static_cast<size_t>(k - 1));
    for (int i = 0; i < k - 1; ++i) {
      auto key = std::make_pair(order[static_cast<size_t>(i)], q);
      auto it = thr_cache_.find(key);
      if (it == thr_cache_.end())
        it = thr_cache_.emplace(key, threshold_candidates(t_, rows_, static_cast<size_t>(key.first), q)).first;
      if (it->second.empty()) return;  // a tier that never accepts: only costs
      thr[static_cast<size_t>(i)] = it->second;
    }
    // Rows with the same threshold levels at every scored tier behave alike: sum them.
    std::unordered_map<uint32_t, uint32_t> index;
    std::vector<Cell> cells;
    for (size_t r : rows_) {
      Cell c;
      uint32_t key = 0;
      for (int i = 0; i < k - 1; ++i) {
        const auto& ti = thr[static_cast<size_t>(i)];
        const double conf = t_.conf[t_.at(r, static_cast<size_t>(order[static_cast<size_t>(i)]))];
        c.levels[i] = static_cast<int>(std::upper_bound(ti.begin(), ti.end(), conf) - ti.begin());
        key = key * 257u + static_cast<uint32_t>(c.levels[i]);
      }
      auto [it, fresh] = index.emplace(key, static_cast<uint32_t>(cells.size()));
      if (fresh) cells.push_back(c);
      Cell& cell = cells[it->second];
      int128_t cum = 0;
      for (int p = 0; p < k; ++p) {
        const size_t at = t_.at(r, static_cast<size_t>(order[static_cast<size_t>(p)]));
        cum += t_.cost[at];
        cell.cum_cost[p] += cum;
        cell.correct[p] += t_.correct[at];
      }
    }
    // Every threshold tuple: tier i accepts a cell when its level exceeds j_i.
    std::vector<int> j(static_cast<size_t>(k - 1), 0);
    std::vector<double> chosen(static_cast<size_t>(k - 1));
    for (;;) {
      Score s{0, 0, k};
      for (const Cell& c : cells) {
        int a = k - 1;
        for (int i = 0; i < k - 1; ++i)
          if (c.levels[i] > j[static_cast<size_t>(i)]) {
            a = i;
            break;
          }
        s.cost += c.cum_cost[a];
        s.correct += c.correct[a];
      }
      for (int i = 0; i < k - 1; ++i) chosen[static_cast<size_t>(i)] = thr[static_cast<size_t>(i)][static_cast<size_t>(j[static_cast<size_t>(i)])];
      offer(order, chosen, s);
      int i = k - 2;
      while (i >= 0 && ++j[static_cast<size_t>(i)] == static_cast<int>(thr[static_cast<size_t>(i)].size())) j[static_cast<size_t>(i--)] = 0;
      if (i < 0) break;
    }
  }

  const Table& t_;
  const std::vector<size_t>& rows_;
  Goal goal_;
  int max_tiers_;
  const std::vector<std::string>& names_;
  std::vector<CalibPoint>* points_;
  std::map<std::pair<int, int>, std::vector<double>> thr_cache_;
  Choice best_;
};

Score score_choice(const Table& t, const std::vector<size_t>& rows, const Choice& c) {
  Score s{0, 0, static_cast<int>(c.order.size())};
  const size_t k = c.order.size();
  for (size_t r : rows) {
    for (size_t i = 0; i < k; ++i) {
      const size_t at = t.at(r, static_cast<size_t>(c.order[i]));
      s.cost += t.cost[at];
      if (i + 1 == k || t.conf[at] >= c.thresholds[i]) {
        s.correct += t.correct[at];
        break;
      }
    }
  }
  return s;
}

std::optional<Money> outcome_cost(const policies::PriceTable& prices, const backends::ReplayCandidate& c) {
  if (c.cost_usd) return *c.cost_usd;
  auto r = prices.cost_of(c.model, *c.usage, 0);
  if (!r) return std::nullopt;
  return r->total;
}

double confidence_of(const backends::ReplayCandidate& c) {
  const std::vector<double> lp = c.token_logprobs();
  auto v = policies::answer_confidence(c.confidence, lp);
  return v ? *v : kNoConfidence;
}

CascadeChoice named(const Choice& c, const std::vector<std::string>& names) {
  CascadeChoice out;
  for (int m : c.order) out.models.push_back(names[static_cast<size_t>(m)]);
  out.thresholds = c.thresholds;
  return out;
}

CalibFigures figures(const Score& s, size_t rows) {
  CalibFigures f;
  f.rows = static_cast<int64_t>(rows);
  f.correct = s.correct;
  f.cost = Money::from_picos(s.cost);
  return f;
}

void add(CalibFigures& to, const CalibFigures& f) {
  to.rows += f.rows;
  to.correct += f.correct;
  to.cost += f.cost;
}

void calibrate_type(const policies::CompiledPolicy& policy, const backends::ReplayLog& log,
                    const std::vector<size_t>& records, const policies::RoutePlan& plan,
                    const CalibrateOptions& opts, CalibrateTypeResult& out) {
  out.reference_model = plan.reference_model;
  std::vector<std::string> models = opts.models;
  if (models.empty()) {
    for (const auto& c : log.records[records.front()].candidates) {
      bool everywhere = true;
      for (size_t ri : records)
        if (!log.records[ri].candidate(c.model)) {
          everywhere = false;
          break;
        }
      if (everywhere) models.push_back(c.model);
    }
    std::sort(models.begin(), models.end());
  }
  if (std::find(models.begin(), models.end(), plan.reference_model) == models.end())
    models.push_back(plan.reference_model);
  out.models = models;
  const size_t ref = static_cast<size_t>(std::find(models.begin(), models.end(), plan.reference_model) - models.begin());

  Table t;
  t.models = models.size();
  std::string why_excluded;
  for (size_t ri : records) {
    const auto& r = log.records[ri];
    bool ok = true;
    const size_t base = t.cost.size();
    for (const auto& m : models) {
      const auto* c = r.candidate(m);
      std::optional<Money> cost = c ? outcome_cost(policy.prices(), *c) : std::nullopt;
      if (!c || !c->correct || !cost) {
        if (why_excluded.empty())
          why_excluded = !c ? "line " + std::to_string(r.line) + ": no outcome of " + m
                         : !c->correct ? "line " + std::to_string(r.line) + ": " + m + " is unlabelled"
                                       : m + " has no price and no recorded cost_usd";
        ok = false;
        break;
      }
      t.cost.push_back(cost->picos());
      t.correct.push_back(*c->correct ? 1 : 0);
      t.conf.push_back(confidence_of(*c));
    }
    if (!ok) {
      t.cost.resize(base);
      t.correct.resize(base);
      t.conf.resize(base);
      ++out.excluded;
      continue;
    }
    out.row_records.push_back(ri);
  }
  const size_t n = out.row_records.size();
  if (n < 2) {
    out.skipped = "fewer than 2 usable records (" + (why_excluded.empty() ? std::string("none") : why_excluded) + ")";
    return;
  }

  auto goal_for = [&](const std::vector<size_t>& rows, double* target) {
    Goal g;
    g.target_mode = opts.goal == CalibrateOptions::Goal::kTargetAccuracy;
    if (g.target_mode) {
      double tgt = opts.target_accuracy;
      if (opts.below_reference) {
        int64_t ref_correct = 0;
        for (size_t r : rows) ref_correct += t.correct[t.at(r, ref)];
        tgt = static_cast<double>(ref_correct) / static_cast<double>(rows.size()) - *opts.below_reference;
      }
      if (target) *target = tgt;
      g.need_correct = static_cast<int64_t>(std::ceil(tgt * static_cast<double>(rows.size()) - 1e-9));
    } else {
      g.max_cost = opts.max_cost_per_request.picos() * static_cast<int128_t>(rows.size());
    }
    return g;
  };

  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  // Folds: a seeded shuffle, dealt round-robin.
  std::vector<size_t> shuffled = all;
  std::mt19937_64 rng(opts.seed);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  out.folds = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(opts.folds, 2)), n));
  out.row_fold.assign(n, 0);
  for (size_t i = 0; i < n; ++i) out.row_fold[shuffled[i]] = static_cast<int>(i % static_cast<size_t>(out.folds));
  const int max_tiers = std::clamp(opts.max_tiers, 1, 4);
  for (int f = 0; f < out.folds; ++f) {
    std::vector<size_t> train, test;
    for (size_t r = 0; r < n; ++r) (out.row_fold[r] == f ? test : train).push_back(r);
    const Choice c = Search(t, train, goal_for(train, nullptr), max_tiers, models, nullptr).run();
    add(out.heldout, figures(score_choice(t, test, c), test.size()));
    out.fold_choices.push_back(named(c, models));
  }
  const Goal g = goal_for(all, &out.target);
  const Choice c = Search(t, all, g, max_tiers, models, opts.keep_points ? &out.points : nullptr).run();
  out.chosen = named(c, models);
  out.insample = figures(c.score, n);
  out.goal_met = feasible(g, c.score);
  Score rs{0, 0, 1};
  for (size_t r : all) {
    rs.cost += t.cost[t.at(r, ref)];
    rs.correct += t.correct[t.at(r, ref)];
  }
  out.reference = figures(rs, n);
}

}  // namespace

std::optional<RowOutcome> evaluate_cascade(const policies::PriceTable& prices, const CascadeChoice& c,
                                           const backends::ReplayRecord& r) {
  RowOutcome o;
  for (size_t i = 0; i < c.models.size(); ++i) {
    const auto* cand = r.candidate(c.models[i]);
    if (!cand || !cand->correct) return std::nullopt;
    auto cost = outcome_cost(prices, *cand);
    if (!cost) return std::nullopt;
    o.cost += *cost;
    if (i + 1 == c.models.size() || confidence_of(*cand) >= c.thresholds[i]) {
      o.correct = *cand->correct;
      return o;
    }
  }
  return std::nullopt;
}

CalibrateResult calibrate(const policies::CompiledPolicy& policy, const backends::ReplayLog& log,
                          const CalibrateOptions& opts) {
  CalibrateResult out;
  out.errors = log.errors;
  std::map<std::string, std::vector<size_t>> by_type;
  for (size_t i = 0; i < log.records.size(); ++i) {
    auto type = classify_record(policy, log.records[i], opts.reclassify);
    if (!type) {
      out.errors.push_back("line " + std::to_string(log.records[i].line) + ": request: " + type.error().message);
      continue;
    }
    by_type[*type].push_back(i);
  }
  for (const auto& type : policy.request_types()) {
    auto it = by_type.find(type.name);
    const policies::RoutePlan* plan = policies::plan_route(policy, type.name);
    if (it == by_type.end() || !plan) continue;
    CalibrateTypeResult r;
    r.request_type = type.name;
    calibrate_type(policy, log, it->second, *plan, opts, r);
    if (r.skipped.empty()) {
      add(out.heldout, r.heldout);
      add(out.reference, r.reference);
    }
    out.types.push_back(std::move(r));
  }
  return out;
}

}  // namespace frugal::router
