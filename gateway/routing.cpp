// ChatExchange's policy stage: classification, budgets, the cascade, the live tier's
// completion, the baseline. See gateway/routing.h and gateway/chat_exchange.h.
#include "gateway/routing.h"

#include "backends/dialect/openai_stream_assembly.h"
#include "core/ids.h"
#include "core/log.h"
#include "gateway/chat_exchange.h"
#include "gateway/server.h"
#include "gateway/shared_state.h"
#include "policies/rate_limit.h"
#include "router/output_shaping.h"
#include "router/tier_answer.h"

namespace frugal::gateway {

namespace {

// A live tier's answer beyond this is not kept for scoring its rule at the end.
constexpr size_t kMaxScoredLiveBytes = 4u << 20;

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

// The prices of this request: the policy's (in front of the built-in catalogue), or the
// catalogue's alone without a policy.
const policies::PriceTable& prices_of(const RouteState& rs) {
  const policies::CompiledPolicy* policy = rs.snap->policy.get();
  return policy ? policy->prices() : policies::builtin_prices();
}

struct Baseline {
  Money money;
  policies::PriceSource source = policies::PriceSource::kNone;
};

// What the answer would have cost without frugal: the route's reference model on the
// answer's tokens. A request without a route (it went where it asked) saves nothing:
// its baseline is its cost, priced as the requested model (`cost_source`); a cache hit
// saves what the requested model would have charged.
Baseline baseline_of(const RouteState& rs, const Usage& answer_usage, Money cost,
                     policies::PriceSource cost_source, bool cache_hit) {
  const policies::PriceTable& prices = prices_of(rs);
  if (is_passthrough(rs)) {
    if (!cache_hit) return {cost, cost_source};
    const policies::PricedCost c = prices.price(rs.plan->reference_model, {}, answer_usage, 0);
    return {c.cost.total, c.source};
  }
  const policies::PricedCost c = prices.price(rs.plan->reference_model, {}, answer_usage, 0);
  if (c.source == policies::PriceSource::kUnknown) return {Money{}, c.source};
  const policies::ModelPrice* p = prices.find(rs.plan->reference_model);
  return {p ? policies::price_baseline(*p, answer_usage) : Money{}, c.source};
}

}  // namespace

Result<void> ChatExchange::route(ChatRequest& req) {
  RouteState& rs = *routing_;
  trace_.requested_model = req.model;
  trace_.client_stream = req.stream;
  trace_.catalogue_version = prices_of(rs).catalogue_version();

  if (ctx_.key) {
    trace_.team = ctx_.key->rec.team;  // with auth on, never a header's claim
    FRUGAL_TRY(check_key_model(req));
  } else {
    std::string_view team_header;
    if (auto it = http_.find("x-frugal-team"); it != http_.end()) team_header = trim(it->value());
    const auto team = cfg_->key_teams.find(trace_.key_id);
    trace_.team = team != cfg_->key_teams.end() ? team->second : std::string(team_header);
  }

  if (const policies::CompiledPolicy* policy = rs.snap->policy.get()) {
    rs.chat_facts = policies::extract_chat_facts(req);
    std::vector<std::string> names;
    std::vector<policies::StringPair> headers;
    for (const auto& f : http_) names.push_back(lowercase(f.name_string()));
    size_t i = 0;
    for (const auto& f : http_) headers.emplace_back(names[i++], f.value());
    std::vector<policies::StringPair> metadata;
    simdjson::dom::object md;
    if (req.client_metadata ? (md = *req.client_metadata, true) : !req.root["metadata"].get_object().get(md)) {
      for (auto field : md) {
        std::string_view v;
        if (!field.value.get_string().get(v)) metadata.emplace_back(field.key, v);
      }
    }
    std::string_view path = http_.target();
    path = path.substr(0, path.find('?'));
    policies::RequestFacts facts;
    facts.headers = headers;
    facts.dialect = trace_.dialect;
    facts.path = path;
    facts.model = req.model;
    facts.api_key_id = trace_.key_id;
    facts.team = trace_.team;
    facts.metadata = metadata;
    policies::apply_chat_facts(rs.chat_facts, facts);
    const policies::RequestType& type = policies::classify(*policy, facts);
    trace_.request_type = type.name;
    // Embeddings are classified (budgets, the ledger's request type) but never take a
    // policy route: vectors of different models live in different spaces, so nothing
    // may answer but the requested model (or its alias's targets).
    rs.plan = req.embeddings ? nullptr : policies::plan_route(*policy, type.name);
    if (rs.plan) {
      trace_.route = rs.plan->request_type;
      trace_.routed = true;
      if (w_.server.capture()) decide_capture(rs, req);
    }
  }
  if (!rs.plan) {
    // No route for this type (or no policy): the requested model, live, uncascaded.
    rs.passthrough.request_type = trace_.request_type;
    rs.passthrough.reference_model = req.model;
    policies::PlannedTier tier;
    tier.model = req.model;
    tier.last = true;
    rs.passthrough.tiers.push_back(std::move(tier));
    rs.plan = &rs.passthrough;
  }
  if (req.embeddings) {
    trace_.route = "embeddings";
    trace_.embeddings = true;
  }
  trace_.classified = true;

  // The route's output shaping, once, before the cache key, the budget estimate and every
  // tier see the request.
  if (!is_passthrough(rs) && rs.plan->shaping.any()) {
    auto shaped = router::shape_request(req, rs.plan->shaping, rs.shaped);
    if (!shaped) return std::move(shaped).error();
    trace_.shaping = *shaped;
  }
  // Key routes, rpm/tpm, streams, budget reservations (gateway/exchange_limits.cpp).
  return admit(req);
}

const policies::RoutePlan& ChatExchange::plan() const { return *routing_->plan; }

const policies::RoutePlan* ChatExchange::route_plan() const {
  if (!routing_->plan || is_passthrough(*routing_)) return nullptr;
  return routing_->plan;
}

std::string ChatExchange::cache_route(const ChatRequest& req) const {
  return route_plan() ? trace_.route : req.model;
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

boost::asio::awaitable<Result<std::shared_ptr<backends::Call>>> ChatExchange::dispatch_routed(ChatRequest& req) {
  RouteState& rs = *routing_;
  router::CascadeInput in;
  in.cfg = cfg_.get();
  in.tier_targets = &targets_.tiers;
  in.plan = rs.plan;
  in.prices = &prices_of(rs);
  in.req = &req;
  // Upstreams are told the trace (a traceparent per tier) when it is exported or continues
  // the caller's; otherwise nobody could look it up and the header is only bytes.
  if (w_.server.otlp() || !trace_.parent_span_id.empty()) in.trace_id = trace_.trace_id;
  in.sampled = trace_.sampled;
  in.response_schema_json = rs.chat_facts.response_schema_json;
  in.question = rs.chat_facts.last_user_message;
  const int64_t t0 = mono_us();
  rs.outcome = co_await router::run_cascade(w_, in, control_);
  router::CascadeOutcome& o = rs.outcome;
  trace_.dispatched = true;
  trace_.tiers = std::move(o.tiers);
  trace_.pricing_error = o.pricing_error;
  if (!o.pricing_error.empty()) log::debug("request " + ctx_.request_id + ": " + o.pricing_error);
  if (o.error) {
    ctx_.upstream_wait_us += mono_us() - t0;
    trace_.status = o.error->kind == ErrorKind::kCancelled ? 499 : o.error->http_status();
    co_return *o.error;
  }
  trace_.answer_tier = o.answer_tier;
  trace_.answer_live = o.live;
  trace_.answer_provider = o.target.provider->name;
  trace_.answer_upstream_model = o.target.model;
  // Time waiting on upstreams (every tier's dispatch and buffering, the live tier until
  // its headers); frugal's own work — scoring, verifier prompts — stays in the overhead.
  // The codec adds a live answer's streaming time.
  ctx_.upstream_wait_us += o.upstream_wait_us;
  if (o.live) {
    const policies::PlannedTier& tier = rs.plan->tiers[static_cast<size_t>(o.answer_tier)];
    rs.keep_live_answer = tier.rule != nullptr && rs.plan->stream_mode == config::StreamMode::kCascade;
    trace_.status = o.call->status();
    // On record from now on (its transport attempts count in the headers); completed by
    // complete_live_tier when the answer ends.
    rs.live_index = trace_.tiers.size();
    trace_.tiers.push_back(std::move(o.live_tier));
  } else {
    // An accepted buffered tier: its answer and cost are known now.
    trace_.answer_model = rs.plan->tiers[static_cast<size_t>(o.answer_tier)].model;
    trace_.answer_usage = o.answer_usage;
    policies::PriceSource answer_price = policies::PriceSource::kNone;  // the last tier's; verifier calls follow it
    for (const auto& a : trace_.tiers)
      if (a.status != router::TierStatus::kVerifier) answer_price = a.price;
    const Baseline b = baseline_of(rs, o.answer_usage, trace_.cost(), answer_price, false);
    set_baseline(b.money, b.source);
  }
  co_return o.call;
}

void ChatExchange::policy_observe(const SseEvent* ev, std::string_view body) {
  RouteState& rs = *routing_;
  if (rs.capture) keep_capture_answer(rs, ev, body);
  if (!rs.outcome.live) return;
  router::TierAttempt& live = trace_.tiers[rs.live_index];
  if (live.first_byte_us == 0) live.first_byte_us = mono_us();
  if (ev) append_finish_reasons(ev->data, live.finish_reasons, backends::AnswerFacts::kMaxFinishReasons);
  if (!rs.keep_live_answer) return;
  const std::string_view bytes = ev ? ev->data : body;
  if (rs.live_answer_bytes + bytes.size() > kMaxScoredLiveBytes) {
    rs.keep_live_answer = false;
    rs.live_payloads = {};
    rs.live_body = std::string();
    return;
  }
  rs.live_answer_bytes += bytes.size();
  if (!ev) rs.live_body.append(body);
  else if (!ev->data.empty() && ev->data != "[DONE]") rs.live_payloads.emplace_back(ev->data);
}

void ChatExchange::on_cache_hit() {
  trace_.answer_usage = trace_.cache.saved_usage;
  const Baseline b = baseline_of(*routing_, trace_.cache.saved_usage, Money{}, policies::PriceSource::kNone, true);
  set_baseline(b.money, b.source);
}

void ChatExchange::complete_live_tier(const Usage& usage, ExchangeEnd end) {
  RouteState& rs = *routing_;
  router::CascadeOutcome& o = rs.outcome;
  if (!o.live || !o.call) {
    if (o.error)
      trace_.status = end == ExchangeEnd::kShutdown                ? shutdown_cut_error().http_status()
                      : o.error->kind == ErrorKind::kCancelled ? 499
                                                               : o.error->http_status();
    return;
  }
  const policies::PlannedTier& tier = rs.plan->tiers[static_cast<size_t>(o.answer_tier)];
  router::TierAttempt& t = trace_.tiers[rs.live_index];
  t.usage = usage;
  t.last_byte_us = mono_us();
  if (!trace_.client_stream) t.first_byte_us = o.call->headers_us();
  router::price_attempt(&prices_of(rs), t, &trace_.pricing_error);
  bool answered = false;
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
      t.reason = "status " + std::to_string(o.call->status());
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
  if (end == ExchangeEnd::kComplete && rs.keep_live_answer && tier.rule) {
    // The last tier answers whatever its rule says; its score still goes on record.
    auto a = trace_.client_stream ? router::parse_tier_stream(rs.live_payloads, nullptr)
                                  : router::parse_tier_answer(rs.live_body);
    if (a) {
      const policies::Decision d = tier.rule->evaluate(a->view(rs.chat_facts.response_schema_json, std::nullopt));
      t.score = d.score;
      t.reason = (d.accepted ? "accepted: " : "last tier answers: ") + d.reason;
    }
  }
  if (const backends::AnswerFacts* f = o.call->answer_facts()) t.finish_reasons = f->finish_reasons;
  trace_.status = o.call->status();
  if (answered) {
    trace_.answer_model = tier.model;
    trace_.answer_usage = usage;
    const Baseline b = baseline_of(rs, usage, trace_.cost(), t.price, false);
    set_baseline(b.money, b.source);
  }
}

void ChatExchange::set_baseline(Money baseline, policies::PriceSource source) {
  trace_.baseline = baseline;
  trace_.baseline_price = source;
  trace_.baseline_known = true;
  if (source == policies::PriceSource::kUnknown && trace_.pricing_error.empty())
    trace_.pricing_error = "no price for the reference model '" + routing_->plan->reference_model + "'";
}

void ChatExchange::book() {
  RouteState& rs = *routing_;
  if (!trace_.pricing_error.empty()) log::debug("request " + ctx_.request_id + ": " + trace_.pricing_error);
  rs.holds.settle(trace_.cost());
  int64_t tokens = 0;
  for (const auto& t : trace_.tiers) tokens += t.usage.total_tokens();
  SharedState* shared = w_.server.shared_state();
  if (!shared || !shared->charge_tokens(rs.holds.rate_scopes, tokens, cfg_->limits.window_ms * 1000))
    w_.server.limiter().charge_tokens(rs.holds.rate_scopes, tokens);
}

}  // namespace frugal::gateway
