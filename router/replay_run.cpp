#include "router/replay_run.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <simdjson.h>

#include <algorithm>

#include "backends/replay/replay_backend.h"
#include "config/config.h"
#include "core/json.h"
#include "policies/budget.h"
#include "router/cascade.h"
#include "router/tier_answer.h"

namespace frugal::router {

namespace asio = boost::asio;

namespace {

constexpr size_t kMaxPricingErrors = 5;

// Every model resolves to the replay backend (a passthrough rule for any name).
class ReplayBackends final : public Backends {
 public:
  backends::Backend& backend(const config::ProviderConfig&) override { return backend_; }
  asio::io_context& io_context() override { return io_; }
  backends::ReplayBackend& replay() { return backend_; }

 private:
  asio::io_context io_;
  backends::ReplayBackend backend_;
};

config::GatewayConfig replay_config() {
  config::GatewayConfig cfg;
  cfg.source = "<replay>";
  config::ProviderConfig p;
  p.name = "replay";
  p.retry.max_attempts = 1;
  cfg.providers.push_back(std::move(p));
  cfg.passthrough.push_back(config::PassthroughRule{"", "replay"});
  return cfg;
}

// The record's chat request, parsed by `parser` (which must outlive it). A record
// without one is a one-message request for its first candidate's model.
Result<ChatRequest> request_of(const backends::ReplayRecord& r, simdjson::dom::parser& parser, std::string& scratch) {
  if (!r.request_json.empty()) return parse_chat_body(parser, r.request_json);
  scratch.clear();
  JsonWriter w(scratch);
  w.begin_object().key("model").value(r.candidates.front().model);
  w.key("messages").begin_array().begin_object().key("role").value("user").key("content").value("").end_object();
  w.end_array().end_object();
  return parse_chat_body(parser, scratch);
}

// As the gateway's policy stage does (gateway/routing.cpp): the request's facts,
// then the policy's first matching type.
std::string classify_request(const policies::CompiledPolicy& policy, const backends::ReplayRecord& r,
                             const ChatRequest& req, const policies::ChatFacts& cf, bool reclassify) {
  if (!r.request_type.empty() && (!reclassify || r.request_json.empty())) {
    for (const auto& t : policy.request_types())
      if (t.name == r.request_type) return t.name;
  }
  if (r.request_json.empty()) return policy.request_types().back().name;
  std::vector<policies::StringPair> headers;
  headers.reserve(r.headers.size());
  for (const auto& [k, v] : r.headers) headers.emplace_back(k, v);
  std::vector<policies::StringPair> metadata;
  simdjson::dom::object md;
  if (req.has_root && !req.root["metadata"].get_object().get(md)) {
    for (auto field : md) {
      std::string_view v;
      if (!field.value.get_string().get(v)) metadata.emplace_back(field.key, v);
    }
  }
  policies::RequestFacts facts;
  facts.headers = headers;
  facts.dialect = Dialect::kOpenAi;
  facts.path = "/v1/chat/completions";
  facts.model = req.model;
  facts.api_key_id = r.api_key_id;
  facts.team = r.team;
  facts.metadata = metadata;
  policies::apply_chat_facts(cf, facts);
  return policies::classify(policy, facts).name;
}

Money candidate_cost(const policies::PriceTable& prices, const backends::ReplayCandidate& c, std::string* err) {
  if (c.cost_usd) return *c.cost_usd;
  return price_tier(&prices, c.model, *c.usage, 0, err);
}

struct Tally {
  ReplayTypeReport report;
  std::vector<std::string>* errors = nullptr;
};

void add_figures(ReplayFigures& to, const ReplayFigures& f) {
  to.requests += f.requests;
  to.answered += f.answered;
  to.labelled += f.labelled;
  to.correct += f.correct;
  to.cost += f.cost;
}

void note_pricing(ReplayTypeReport& t, const std::string& e) {
  if (e.empty() || t.pricing_errors.size() >= kMaxPricingErrors) return;
  if (std::find(t.pricing_errors.begin(), t.pricing_errors.end(), e) == t.pricing_errors.end())
    t.pricing_errors.push_back(e);
}

struct Run {
  Run(const policies::CompiledPolicy& p, const backends::ReplayLog& l, const ReplayOptions& o)
      : policy(p), log(l), opts(o) {}
  const policies::CompiledPolicy& policy;
  const backends::ReplayLog& log;
  const ReplayOptions& opts;
  ReplayBackends backends;
  config::GatewayConfig cfg = replay_config();
  policies::ManualClock clock{0};
  std::unique_ptr<policies::BudgetTracker> budgets;
  std::map<std::string, ReplayTypeReport> by_type;
  std::map<const policies::RoutePlan*, std::vector<Result<std::vector<Target>>>> plan_targets;
  ReplayReport out;

  const std::vector<Result<std::vector<Target>>>& targets_of(const policies::RoutePlan& plan) {
    auto it = plan_targets.find(&plan);
    if (it != plan_targets.end()) return it->second;
    std::vector<Result<std::vector<Target>>> t;
    for (const auto& tier : plan.tiers) t.push_back(resolve_model(cfg, tier.model));
    return plan_targets.emplace(&plan, std::move(t)).first->second;
  }

  asio::awaitable<void> one(const backends::ReplayRecord& r);
  asio::awaitable<void> all() {
    for (const auto& r : log.records) co_await one(r);
  }
};

asio::awaitable<void> Run::one(const backends::ReplayRecord& r) {
  simdjson::dom::parser& parser = *[] {
    thread_local simdjson::dom::parser p;
    return &p;
  }();
  std::string scratch;
  auto req = request_of(r, parser, scratch);
  if (!req) {
    out.errors.push_back("line " + std::to_string(r.line) + ": request: " + req.error().message);
    co_return;
  }
  req->stream = false;  // recorded answers are whole bodies
  const policies::ChatFacts cf = policies::extract_chat_facts(*req);
  const std::string type = classify_request(policy, r, *req, cf, opts.reclassify);
  ReplayTypeReport& t = by_type[type];
  t.request_type = type;
  const policies::RoutePlan* plan = policies::plan_route(policy, type);
  policies::RoutePlan passthrough;
  if (!plan) {
    passthrough.request_type = type;
    passthrough.reference_model = req->model;
    policies::PlannedTier tier;
    tier.model = req->model;
    tier.last = true;
    passthrough.tiers.push_back(std::move(tier));
  }
  const policies::RoutePlan& p = plan ? *plan : passthrough;
  t.routed = plan != nullptr;
  if (t.reference_model.empty()) t.reference_model = p.reference_model;
  if (t.tiers.size() < p.tiers.size()) {
    t.tiers.resize(p.tiers.size());
    for (size_t i = 0; i < p.tiers.size(); ++i) t.tiers[i].model = p.tiers[i].model;
  }
  ++t.policy.requests;

  // Always the reference, as recorded.
  ++t.reference.requests;
  if (const auto* ref = r.candidate(p.reference_model)) {
    std::string err;
    t.reference.cost += candidate_cost(policy.prices(), *ref, &err);
    note_pricing(t, err);
    ++t.reference.answered;
    if (ref->correct) {
      ++t.reference.labelled;
      t.reference.correct += *ref->correct ? 1 : 0;
    }
  } else {
    ++t.reference_missing;
  }

  if (budgets) {
    clock.set(r.ts_us);
    const policies::BudgetCheck check = budgets->check(policies::BudgetFacts{r.team, r.api_key_id, type});
    if (!check.allowed) {
      ++t.denied;
      co_return;
    }
  }

  backends.replay().set_record(&r);
  CascadeInput in;
  in.cfg = &cfg;
  std::vector<Result<std::vector<Target>>> own_targets;
  if (plan) {
    in.tier_targets = &targets_of(*plan);
  } else {
    own_targets.push_back(resolve_model(cfg, passthrough.tiers[0].model));
    in.tier_targets = &own_targets;
  }
  in.plan = &p;
  in.prices = &policy.prices();
  in.req = &*req;
  in.response_schema_json = cf.response_schema_json;
  in.question = cf.last_user_message;
  DispatchControl control;
  CascadeOutcome o = co_await run_cascade(backends, in, control);

  // The live (last) tier: completed as the gateway completes it when its answer ends.
  std::string pricing_error = o.pricing_error;
  Usage answer_usage = o.answer_usage;
  bool answered = !o.error && o.call != nullptr;
  if (answered && o.live) {
    TierAttempt live = std::move(o.live_tier);
    std::string body = o.call->take_body();
    auto a = o.call->status() < 400 ? parse_tier_answer(body)
                                    : Result<TierAnswer>(make_error(ErrorKind::kUpstream, "status"));
    if (a) {
      live.status = TierStatus::kAccepted;
      live.usage = a->usage;
      live.cost = price_tier(in.prices, live.model, live.usage, 0, &pricing_error);
      answer_usage = a->usage;
    } else {
      live.status = TierStatus::kError;
      answered = false;
    }
    o.tiers.push_back(std::move(live));
  }

  Money cost;
  bool all_costs_recorded = true;
  size_t tier_no = 0;
  for (const TierAttempt& a : o.tiers) {
    const auto* cand = r.candidate(a.model);
    const Money c = cand && cand->cost_usd ? *cand->cost_usd : a.cost;
    if (!(cand && cand->cost_usd)) all_costs_recorded = false;
    cost += c;
    if (a.status == TierStatus::kVerifier || tier_no >= t.tiers.size()) continue;
    ReplayTierStats& s = t.tiers[tier_no++];
    ++s.tried;
    s.cost += c;
    if (a.status == TierStatus::kAccepted) ++s.accepted;
    else if (a.status == TierStatus::kRejected) ++s.rejected;
    else ++s.errors;
  }
  if (!all_costs_recorded) note_pricing(t, pricing_error);
  t.policy.cost += cost;
  if (budgets && cost != Money{}) budgets->record(policies::BudgetFacts{r.team, r.api_key_id, type}, cost);
  if (!answered) {
    ++t.failed;
    co_return;
  }
  ++t.policy.answered;
  const std::string& answer_model = p.tiers[static_cast<size_t>(o.answer_tier)].model;
  const auto* ans = r.candidate(answer_model);
  if (ans && ans->correct) {
    ++t.policy.labelled;
    t.policy.correct += *ans->correct ? 1 : 0;
  }
  if (!plan) {
    t.baseline += cost;  // the requested model, uncascaded: nothing saved (as live)
  } else if (ans && ans->usage) {
    auto b = policy.prices().baseline_of(p.reference_model, answer_usage);
    if (b) t.baseline += *b;
    else note_pricing(t, b.error().message);
  } else if (const auto* ref = r.candidate(p.reference_model)) {
    std::string err;
    t.baseline += candidate_cost(policy.prices(), *ref, &err);
  }
}

}  // namespace

Result<std::string> classify_record(const policies::CompiledPolicy& policy, const backends::ReplayRecord& r,
                                    bool reclassify) {
  simdjson::dom::parser parser;
  std::string scratch;
  auto req = request_of(r, parser, scratch);
  if (!req) return std::move(req).error();
  return classify_request(policy, r, *req, policies::extract_chat_facts(*req), reclassify);
}

ReplayReport run_replay(const policies::CompiledPolicy& policy, const backends::ReplayLog& log,
                        const ReplayOptions& opts) {
  Run run(policy, log, opts);
  if (opts.budgets && !policy.config().budgets.empty())
    run.budgets = std::make_unique<policies::BudgetTracker>(policy.config().budgets, &run.clock);
  asio::co_spawn(run.backends.io_context(), run.all(), asio::detached);
  run.backends.io_context().run();
  ReplayReport& out = run.out;
  out.errors.insert(out.errors.begin(), log.errors.begin(), log.errors.end());
  out.overall.request_type = "overall";
  for (const auto& type : policy.request_types()) {
    auto it = run.by_type.find(type.name);
    if (it == run.by_type.end()) continue;
    ReplayTypeReport& t = it->second;
    add_figures(out.overall.policy, t.policy);
    add_figures(out.overall.reference, t.reference);
    out.overall.failed += t.failed;
    out.overall.denied += t.denied;
    out.overall.baseline += t.baseline;
    out.overall.reference_missing += t.reference_missing;
    for (const auto& e : t.pricing_errors) note_pricing(out.overall, e);
    out.types.push_back(std::move(t));
  }
  return std::move(run.out);
}

}  // namespace frugal::router
