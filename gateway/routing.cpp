// ChatExchange's policy half: classification, budgets, the cascade, the ledger row.
// See gateway/routing.h for the shape and gateway/chat_exchange.h for the contract.
#include "gateway/routing.h"

#include "core/ids.h"
#include "core/sse.h"
#include "gateway/chat_exchange.h"
#include "gateway/client_watch.h"
#include "core/log.h"
#include "gateway/server.h"
#include "router/ledger.h"
#include "router/tier_answer.h"

namespace frugal::gateway {

namespace {

// A live tier's answer beyond this is not kept for scoring its rule at the end.
constexpr size_t kMaxScoredLiveBytes = 4u << 20;
// What the ledger books a cache hit's request to (it costs nothing; its baseline is
// what the route's reference model would have charged for the stored answer).
constexpr const char* kCacheModel = "(cache)";

// `name`: a string literal (RequestContext::headers keeps the view).
void set_header(RequestContext& ctx, std::string_view name, std::string value) {
  for (auto& [k, v] : ctx.headers) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  ctx.headers.emplace_back(name, std::move(value));
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_passthrough(const RouteState& rs) { return rs.plan == &rs.passthrough; }

// What the answer would have cost without frugal: the route's reference model on the
// answer's tokens. A request without a route (it went where it asked) saves nothing,
// except a cache hit, which saves what the requested model would have charged.
Money baseline_of(const RouteState& rs, const Usage& answer_usage, Money cost, bool cache_hit) {
  const policies::CompiledPolicy* policy = rs.snap->policy.get();
  if (!policy) return Money{};
  if (is_passthrough(rs)) {
    if (!cache_hit) return cost;
    return router::price_tier(&policy->prices(), rs.plan->reference_model, answer_usage, 0, nullptr);
  }
  auto b = policy->prices().baseline_of(rs.plan->reference_model, answer_usage);
  return b ? *b : Money{};
}

}  // namespace

Result<void> ChatExchange::route(ChatRequest& req) {
  RouteState& rs = *routing_;
  rs.wall_start_us = wall_us() - (mono_us() - ctx_.start_us);
  rs.client_stream = req.stream;

  std::string_view team_header;
  if (auto it = http_.find("x-frugal-team"); it != http_.end()) team_header = trim(it->value());
  rs.key_id = tenant_;
  const auto team = cfg_->key_teams.find(rs.key_id);
  rs.team = team != cfg_->key_teams.end() ? team->second : std::string(team_header);

  if (const policies::CompiledPolicy* policy = rs.snap->policy.get()) {
    rs.chat_facts = policies::extract_chat_facts(req);
    std::vector<std::string> names;
    std::vector<policies::StringPair> headers;
    for (const auto& f : http_) names.push_back(lowercase(f.name_string()));
    size_t i = 0;
    for (const auto& f : http_) headers.emplace_back(names[i++], f.value());
    std::vector<policies::StringPair> metadata;
    simdjson::dom::object md;
    if (!req.root["metadata"].get_object().get(md)) {
      for (auto field : md) {
        std::string_view v;
        if (!field.value.get_string().get(v)) metadata.emplace_back(field.key, v);
      }
    }
    std::string_view path = http_.target();
    path = path.substr(0, path.find('?'));
    policies::RequestFacts facts;
    facts.headers = headers;
    facts.dialect = dialect_ == Dialect::kAnthropic ? policies::Dialect::kAnthropic : policies::Dialect::kOpenAi;
    facts.path = path;
    facts.model = req.model;
    facts.api_key_id = rs.key_id;
    facts.team = rs.team;
    facts.metadata = metadata;
    policies::apply_chat_facts(rs.chat_facts, facts);
    const policies::RequestType& type = policies::classify(*policy, facts);
    rs.request_type = type.name;
    rs.plan = policies::plan_route(*policy, type.name);
    if (rs.plan) rs.route_name = rs.plan->request_type;
  }
  if (!rs.plan) {
    // No route for this type (or no policy): the requested model, live, uncascaded.
    rs.passthrough.request_type = rs.request_type;
    rs.passthrough.reference_model = req.model;
    policies::PlannedTier tier;
    tier.model = req.model;
    tier.last = true;
    rs.passthrough.tiers.push_back(std::move(tier));
    rs.plan = &rs.passthrough;
  }
  set_header(ctx_, "x-frugal-request-type", rs.request_type);
  set_header(ctx_, "x-frugal-route", rs.route_name);

  if (rs.snap->budgets) {
    const policies::BudgetCheck check =
        rs.snap->budgets->check(policies::BudgetFacts{rs.team, rs.key_id, rs.request_type});
    if (!check.allowed) {
      log::warn("request " + ctx_.request_id + " denied: " + check.message);
      const int64_t wait_s = (check.resets_at_us - budget_clock().now_us() + 999'999) / 1'000'000;
      if (wait_s > 0) set_header(ctx_, "retry-after", std::to_string(wait_s));
      return make_error(ErrorKind::kRateLimited, "Spend limit reached: " + check.message + ".", "",
                        "budget_exceeded");
    }
    if (check.soft_exceeded) {
      w_.server.count_soft_budget_exceeded();
      log::warn("request " + ctx_.request_id + ": " + check.message);
      set_header(ctx_, "x-frugal-budget-warning", check.message);
    }
  }
  return {};
}

Result<std::vector<router::Target>> ChatExchange::first_targets(const ChatRequest&) const {
  return router::resolve_model(*cfg_, routing_->plan->tiers.front().model);
}

std::string ChatExchange::cache_route(const ChatRequest& req) const {
  return route_plan() ? routing_->route_name : req.model;
}

router::Target ChatExchange::cache_target(const router::Target& first) const {
  const policies::RoutePlan* plan = route_plan();
  if (!plan) return first;
  // Keyed by the whole cascade: a policy that changes the tiers starts a new key space.
  router::Target t = first;
  t.model.clear();
  for (const auto& tier : plan->tiers) t.model += (t.model.empty() ? "" : ">") + tier.model;
  return t;
}

boost::asio::awaitable<Result<std::shared_ptr<backends::Call>>> ChatExchange::dispatch_routed(
    ChatRequest& req, const std::vector<router::Target>& first_targets) {
  RouteState& rs = *routing_;
  const policies::CompiledPolicy* policy = rs.snap->policy.get();
  router::CascadeInput in;
  in.cfg = cfg_.get();
  in.first_targets = &first_targets;
  in.plan = rs.plan;
  in.prices = policy ? &policy->prices() : nullptr;
  in.req = &req;
  in.response_schema_json = rs.chat_facts.response_schema_json;
  in.question = rs.chat_facts.last_user_message;
  const int64_t t0 = mono_us();
  rs.outcome = co_await router::run_cascade(w_, in, control_);
  rs.dispatched = true;
  router::CascadeOutcome& o = rs.outcome;
  if (!o.pricing_error.empty()) log::debug("request " + ctx_.request_id + ": " + o.pricing_error);
  if (o.error) {
    ctx_.upstream_wait_us += mono_us() - t0;
    co_return *o.error;
  }
  target_ = o.target;
  set_header(ctx_, "x-frugal-provider", o.target.provider->name);
  set_header(ctx_, "x-frugal-model", o.target.model);
  if (o.attempts.size() > 1) set_header(ctx_, "x-frugal-attempts", std::to_string(o.attempts.size()));
  set_header(ctx_, "x-frugal-tier", std::to_string(o.answer_tier + 1));
  // What is known now; finish() replaces these with the final figures (which is what a
  // plain response carries) and a stream gets the final ones as trailers.
  set_header(ctx_, "x-frugal-cost-usd", o.cost.to_usd_string());
  // Time waiting on upstreams (every tier's dispatch and buffering, the live tier until
  // its headers); frugal's own work — scoring, verifier prompts — stays in the overhead.
  // The codec adds a live answer's streaming time.
  ctx_.upstream_wait_us += o.upstream_wait_us;
  if (o.live) {
    set_header(ctx_, "x-frugal-cost-final", "false");
    const policies::PlannedTier& tier = rs.plan->tiers[static_cast<size_t>(o.answer_tier)];
    rs.keep_live_bytes = tier.rule != nullptr && rs.plan->stream_mode == config::StreamMode::kCascade;
  } else {
    set_header(ctx_, "x-frugal-cost-final", "true");
    set_header(ctx_, "x-frugal-savings-usd",
               (baseline_of(rs, o.answer_usage, o.cost, false) - o.cost).to_usd_string());
  }
  co_return o.call;
}

void ChatExchange::observe_routed(std::string_view bytes) {
  RouteState& rs = *routing_;
  if (!rs.outcome.live || bytes.empty()) return;
  if (rs.live_first_byte_us == 0) rs.live_first_byte_us = mono_us();
  if (!rs.keep_live_bytes) return;
  if (rs.live_bytes.size() + bytes.size() > kMaxScoredLiveBytes) {
    rs.keep_live_bytes = false;
    rs.live_bytes = std::string();
    return;
  }
  rs.live_bytes.append(bytes);
}

void ChatExchange::on_cache_hit() {
  RouteState& rs = *routing_;
  rs.cache_model = kCacheModel;
  set_header(ctx_, "x-frugal-cost-usd", Money{}.to_usd_string());
  set_header(ctx_, "x-frugal-savings-usd", baseline_of(rs, cache_saved_usage_, Money{}, true).to_usd_string());
  set_header(ctx_, "x-frugal-cost-final", "true");
}

void ChatExchange::record(const Usage& usage, ExchangeEnd end) {
  RouteState& rs = *routing_;
  const bool cache_hit = cache_outcome_ == router::CacheOutcome::kHit;
  if (rs.recorded || (!rs.dispatched && !cache_hit)) return;  // never reached an answer source: no row
  rs.recorded = true;
  const policies::CompiledPolicy* policy = rs.snap->policy.get();
  const policies::PriceTable* prices = policy ? &policy->prices() : nullptr;
  router::CascadeOutcome& o = rs.outcome;

  router::LedgerRecord r;
  r.request_id = ctx_.request_id;
  r.wall_us = rs.wall_start_us;
  r.key_id = rs.key_id;
  r.team = rs.team;
  r.request_type = rs.request_type;
  r.route = rs.route_name;
  r.dialect = dialect_name(dialect_);
  r.cache = cache_outcome_;
  r.tiers = std::move(o.tiers);
  r.stream_cancelled = end == ExchangeEnd::kClientGone;
  Money cost = o.cost;
  std::string pricing_error = o.pricing_error;
  bool answered = false;
  Usage answer_usage;
  int status = 200;

  if (cache_hit) {
    answered = true;
    answer_usage = cache_saved_usage_;  // what the stored answer consumed (the cost avoided)
    r.answer_model = rs.cache_model;
  } else if (o.live && o.call) {
    const policies::PlannedTier& tier = rs.plan->tiers[static_cast<size_t>(o.answer_tier)];
    const int64_t now = mono_us();
    router::LedgerTier t;
    t.model = tier.model;
    t.provider = o.target.provider ? o.target.provider->name : "";
    t.usage = usage;
    t.latency_us = now - o.live_started_us;
    const int64_t first = rs.client_stream ? rs.live_first_byte_us : o.call->headers_us();
    t.ttft_us = first > 0 ? first - o.live_started_us : 0;
    t.cost = router::price_tier(prices, tier.model, usage, t.latency_us, &pricing_error);
    status = o.call->status();
    switch (end) {
      case ExchangeEnd::kComplete:
        t.status = router::TierStatus::kAccepted;
        t.reason = is_passthrough(rs) ? "no route" : tier.last ? "last tier answers" : "first_tier: not scored";
        answered = true;
        break;
      case ExchangeEnd::kClientGone:
        t.status = router::TierStatus::kAccepted;
        t.reason = "the client disconnected mid-answer";
        answered = true;
        break;
      case ExchangeEnd::kUpstreamError:
        t.status = router::TierStatus::kError;
        t.reason = "status " + std::to_string(status);
        break;
      case ExchangeEnd::kUpstreamBroke:
        t.status = router::TierStatus::kError;
        t.reason = "the answer broke off";
        break;
      case ExchangeEnd::kShutdown:
        t.status = router::TierStatus::kError;
        t.reason = "shutdown: the gateway stopped mid-answer";
        break;
    }
    if (end == ExchangeEnd::kComplete && rs.keep_live_bytes && tier.rule) {
      // The last tier answers whatever its rule says; its score still goes on record.
      Result<router::TierAnswer> a = make_error(ErrorKind::kUpstream, "no answer");
      if (rs.client_stream) {
        std::vector<std::string> payloads;
        SseParser sse;
        sse.feed(rs.live_bytes, [&](const SseEvent& ev) {
          if (!ev.data.empty() && ev.data != "[DONE]") payloads.emplace_back(ev.data);
        });
        a = router::parse_tier_stream(payloads, nullptr);
      } else {
        a = router::parse_tier_answer(rs.live_bytes);
      }
      if (a) {
        const policies::Decision d = tier.rule->evaluate(a->view(rs.chat_facts.response_schema_json, std::nullopt));
        t.score = d.score;
        t.reason = (d.accepted ? "accepted: " : "last tier answers: ") + d.reason;
      }
    }
    cost += t.cost;
    answer_usage = usage;
    if (answered) r.answer_model = tier.model;
    r.tiers.push_back(std::move(t));
  } else if (o.call) {  // an accepted buffered tier, replayed
    answered = true;
    answer_usage = o.answer_usage;
    r.answer_model = rs.plan->tiers[static_cast<size_t>(o.answer_tier)].model;
  } else if (o.error) {
    status = end == ExchangeEnd::kShutdown                ? shutdown_cut_error().http_status()
             : o.error->kind == ErrorKind::kCancelled ? 499
                                                      : o.error->http_status();
  }
  if (!pricing_error.empty()) log::debug("request " + ctx_.request_id + ": " + pricing_error);

  r.total_cost = cost;
  r.baseline = answered ? baseline_of(rs, answer_usage, cost, cache_hit) : Money{};
  r.savings = r.baseline - r.total_cost;
  r.status_code = status;

  if (rs.snap->budgets && cost.micros != 0)
    rs.snap->budgets->record(policies::BudgetFacts{rs.team, rs.key_id, rs.request_type}, cost);

  set_header(ctx_, "x-frugal-cost-usd", r.total_cost.to_usd_string());
  set_header(ctx_, "x-frugal-savings-usd", r.savings.to_usd_string());
  set_header(ctx_, "x-frugal-cost-final", "true");

  router::Ledger& ledger = w_.server.ledger();
  if (end == ExchangeEnd::kComplete && status < 400) {
    // The codec awaits commit() before the response's last bytes. Nearly idle (about
    // one request per I/O thread), the row is written right here: a WAL write is
    // cheaper than a thread wake-up. Under load it joins this loop turn's batch
    // (gateway/ledger_lane.h).
    rs.commit_batch = w_.ledger_lane.add(std::move(r), w_.server.nearly_idle());
  } else if (!ledger.append(std::move(r))) {
    log::error("request " + ctx_.request_id + ": ledger queue full or closed, row dropped");
  }
}

boost::asio::awaitable<void> ChatExchange::commit() {
  if (routing_->commit_batch) co_await w_.ledger_lane.wait(routing_->commit_batch);
}

std::vector<std::pair<std::string, std::string>> ChatExchange::trailers() const {
  // The final figures record() set as headers, again for a stream's terminating chunk.
  std::vector<std::pair<std::string, std::string>> t;
  for (const auto& [k, v] : ctx_.headers)
    if (k == "x-frugal-cost-usd" || k == "x-frugal-savings-usd") t.emplace_back(k, v);
  return t;
}

const policies::RoutePlan* ChatExchange::route_plan() const {
  if (!routing_->plan || is_passthrough(*routing_)) return nullptr;
  return routing_->plan;
}

}  // namespace frugal::gateway
