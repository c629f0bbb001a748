// ChatExchange's limits: what the request's virtual key may use, its key's and team's
// rpm/tpm buckets and concurrent streams, and budget reservations (policies/budget.h).
// Called from the policy stage (gateway/routing.cpp) once the request is classified;
// everything taken is held in RouteState::holds until the exchange ends.
#include "core/log.h"
#include "gateway/chat_exchange.h"
#include "gateway/routing.h"
#include "gateway/server.h"
#include "gateway/shared_state.h"
#include "router/cascade.h"

namespace frugal::gateway {

namespace {

// Before dispatch the cost is unknown: the input (the body's bytes / 4, more than its
// tokens for any tokenizer in use) and max_tokens of output (or the configured
// default) at the first tier's price; or a fixed amount per request when configured.
Money estimate_cost(const RouteState& rs, const ChatRequest& req, size_t body_bytes, const config::LimitsConfig& lc) {
  if (lc.estimate_request_micros) return Money::from_micros(*lc.estimate_request_micros);
  const policies::CompiledPolicy* policy = rs.snap->policy.get();
  if (!policy || !rs.plan || rs.plan->tiers.empty()) return Money{};
  Usage u;
  u.input_tokens = static_cast<int64_t>((body_bytes + 3) / 4);
  u.output_tokens = req.sampling.max_tokens.value_or(lc.estimate_output_tokens);
  return router::price_tier(&policy->prices(), rs.plan->tiers.front().model, u, 0, nullptr);
}

}  // namespace

Result<void> ChatExchange::check_key_model(const ChatRequest& req) const {
  const VirtualKey& k = ctx_.key->rec;
  if (name_allowed(k.models, req.model)) return {};
  return make_error(ErrorKind::kPermission, "The API key '" + k.name + "' may not use model '" + req.model + "'.",
                    "model", "model_not_allowed");
}

Result<void> ChatExchange::admit(const ChatRequest& req) {
  RouteState& rs = *routing_;
  LimitHolds& h = rs.holds;
  h.team = trace_.team;
  h.key = trace_.key_id;
  h.request_type = trace_.request_type;
  const VirtualKey* key = ctx_.key ? &ctx_.key->rec : nullptr;

  if (key && !key->routes.empty() && !name_allowed(key->routes, trace_.route) &&
      !name_allowed(key->routes, trace_.request_type))
    return make_error(ErrorKind::kPermission,
                      "The API key '" + key->name + "' may not use route '" + trace_.route + "'.", "",
                      "route_not_allowed");

  // rpm / tpm: the key's own limits, then its team's.
  if (key && (key->rpm > 0 || key->tpm > 0)) h.rate_scopes.push_back({"key " + key->name, key->rpm, key->tpm});
  if (!trace_.team.empty()) {
    if (const auto t = cfg_->limits.teams.find(trace_.team); t != cfg_->limits.teams.end())
      h.rate_scopes.push_back({"team " + trace_.team, t->second.rpm, t->second.tpm});
  }
  if (!h.rate_scopes.empty()) {
    policies::RateDecision d;
    SharedState* shared = w_.server.shared_state();
    auto shared_d = shared ? shared->admit(h.rate_scopes, cfg_->limits.window_ms * 1000)
                           : Result<policies::RateDecision>(policies::RateDecision{});
    if (shared && shared_d) {
      d = *shared_d;
    } else if (shared && !shared->fail_open()) {
      h.rate_scopes.clear();
      log::warn("request " + ctx_.request_id + " refused: " + shared_d.error().message + " (on_failure: closed)");
      return shared_d.error();  // 503 in the client's shape
    } else {
      d = w_.server.limiter().admit(h.rate_scopes);  // no shared state, or it failed open
    }
    if (!d.allowed) {
      h.rate_scopes.clear();  // nothing was taken; nothing to charge
      trace_.limit.allowed = false;
      trace_.limit.message = d.message;
      trace_.limit.retry_after_s = d.retry_after_s;
      return make_error(ErrorKind::kRateLimited, d.message, "", "rate_limit_exceeded");
    }
  }

  // Concurrent streams of the key.
  if (key && key->max_streams > 0 && req.stream) {
    KeyRuntime& rt = *ctx_.key->runtime;
    if (rt.streams.fetch_add(1, std::memory_order_relaxed) >= key->max_streams) {
      rt.streams.fetch_sub(1, std::memory_order_relaxed);
      trace_.limit.allowed = false;
      trace_.limit.message = "The API key '" + key->name + "' has " + std::to_string(key->max_streams) +
                             " streams open already (its limit).";
      trace_.limit.retry_after_s = 1;
      return make_error(ErrorKind::kRateLimited, trace_.limit.message, "", "too_many_streams");
    }
    h.stream_of = ctx_.key->runtime;
  }

  // Budgets: reserve the estimate in the policy's budgets and the key's own.
  std::vector<std::shared_ptr<policies::BudgetTracker>> trackers;
  if (rs.snap->budgets) trackers.push_back(rs.snap->budgets);
  if (ctx_.key && ctx_.key->runtime->budget) trackers.push_back(ctx_.key->runtime->budget);
  if (trackers.empty()) return {};
  const Money estimate = estimate_cost(rs, req, http_.body().size(), cfg_->limits);
  router::BudgetDecision& b = trace_.budget;
  b.checked = true;
  SharedState* shared = w_.server.shared_state();
  for (const auto& tracker : trackers) {
    policies::BudgetCheck check;
    std::string reservation;
    bool held_shared = false;
    if (shared) {
      reservation = shared->new_reservation_id();
      std::string denied;
      auto r = shared->reserve_budget(tracker->scopes(h.facts()), estimate, reservation, &denied);
      if (r) {
        check = *r;
        held_shared = check.allowed;
        if (!check.allowed) tracker->count_denied(denied);
      } else if (!shared->fail_open()) {
        h.settle(Money{});
        log::warn("request " + ctx_.request_id + " refused: " + r.error().message + " (on_failure: closed)");
        return r.error();  // 503 in the client's shape
      } else {
        check = tracker->reserve(h.facts(), estimate);  // this replica's own view of the budget
      }
    } else {
      check = tracker->reserve(h.facts(), estimate);
    }
    if (!check.allowed) {
      h.settle(Money{});  // the reservations made so far
      b.allowed = false;
      log::warn("request " + ctx_.request_id + " denied: " + check.message);
      b.message = check.message;
      b.retry_after_s = (check.resets_at_us - budget_clock().now_us() + 999'999) / 1'000'000;
      return make_error(ErrorKind::kRateLimited, "Spend limit reached: " + check.message + ".", "",
                        "budget_exceeded");
    }
    h.budgets.push_back({tracker, estimate, held_shared ? shared : nullptr, std::move(reservation)});
    if (check.soft_exceeded && !b.soft_exceeded) {
      b.soft_exceeded = true;
      w_.server.count_soft_budget_exceeded();
      log::warn("request " + ctx_.request_id + ": " + check.message);
      b.message = check.message;
    }
  }
  return {};
}

}  // namespace frugal::gateway
