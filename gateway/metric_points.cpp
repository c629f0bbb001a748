#include "gateway/metric_points.h"

#include <array>
#include <utility>

namespace frugal::gateway {

namespace {

using router::TierAttempt;
using router::TierStatus;

double seconds(int64_t us) { return static_cast<double>(us) / 1e6; }

MetricLabel fixed(std::string_view name, std::string_view value) { return {name, value, LabelSource::kFixed}; }

// The model label of a tier: a policy route's models come from the policy; without a
// route the tier's model is the name the client asked for.
MetricLabel model_label(const router::RequestTrace& t, std::string_view model) {
  return {"model", model, t.routed ? LabelSource::kFixed : LabelSource::kModel};
}

// request_type, route, model, team, key_id: the labels of the USD counters.
MetricLabels cost_labels(const router::RequestTrace& t, MetricLabel model) {
  return {fixed("request_type", t.request_type), fixed("route", t.route), model,
          {"team", t.team, LabelSource::kTeam}, {"key_id", t.key_id, LabelSource::kKey}};
}

// The GenAI operation labels of one tier attempt.
MetricLabels operation_labels(const router::RequestTrace& t, const TierAttempt& a) {
  // The upstream model is the requested one, unchanged, unless a route or alias names it.
  return {fixed("gen_ai_operation_name", t.operation_name()), fixed("gen_ai_provider_name", a.provider),
          {"gen_ai_request_model", a.upstream_model.empty() ? a.model : a.upstream_model,
           t.routed ? LabelSource::kFixed : LabelSource::kModel}};
}

void add_tokens(MetricPoints& out, uint32_t op, const char* type, int64_t n) {
  out.add(MetricFamily::kTokenUsage, op, static_cast<double>(n), {}, fixed("gen_ai_token_type", type));
}

// The decimal text of `n`: static for 0-999 (statuses, tier numbers), else owned by `pts`.
std::string_view number_text(int64_t n, MetricPoints& pts) {
  static const auto table = [] {
    std::array<std::array<char, 4>, 1000> t{};
    for (size_t i = 0; i < t.size(); ++i) {
      size_t k = 0;
      if (i >= 100) t[i][k++] = static_cast<char>('0' + i / 100);
      if (i >= 10) t[i][k++] = static_cast<char>('0' + i / 10 % 10);
      t[i][k] = static_cast<char>('0' + i % 10);
    }
    return t;
  }();
  if (n < 0 || n >= 1000) return pts.own(std::to_string(n));
  const auto& e = table[static_cast<size_t>(n)];
  return std::string_view(e.data(), n >= 100 ? 3 : n >= 10 ? 2 : 1);
}

bool is_identifier_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

std::string upstream_outcome(const router::AttemptRecord& a) {
  if (!a.error.empty() || a.status <= 0) return "error";
  if (a.status >= 400) return "http_" + std::to_string(a.status);
  return "ok";
}

std::string_view upstream_outcome(const router::AttemptRecord& a, MetricPoints& pts) {
  if (!a.error.empty() || a.status <= 0) return "error";
  if (a.status >= 400) return pts.own(upstream_outcome(a));
  return "ok";
}

std::string_view escalation_reason(const TierAttempt& t) {
  if (t.status != TierStatus::kRejected) return "error";
  if (t.reason.rfind("none of any", 0) == 0) return "any";
  size_t n = 0;
  while (n < t.reason.size() && n < 32 && is_identifier_char(t.reason[n])) ++n;
  return n == 0 ? std::string_view("rejected") : std::string_view(t.reason).substr(0, n);
}

MetricPoints metric_points(const router::RequestTrace& t) {
  MetricPoints pts;
  pts.sets.reserve(6 + 4 * t.tiers.size());
  pts.points.reserve(8 + 10 * t.tiers.size());
  const auto counter = [&](MetricFamily f, const MetricLabels& labels) { pts.add(f, pts.add_set(labels), 1); };
  counter(MetricFamily::kRequests, {fixed("status", number_text(t.status, pts))});
  switch (t.cache.outcome) {
    case router::CacheOutcome::kNone:
      break;
    case router::CacheOutcome::kHit:
      counter(MetricFamily::kCacheRequests, {fixed("route", t.route), fixed("result", "hit")});
      break;
    case router::CacheOutcome::kMiss:
      counter(MetricFamily::kCacheRequests, {fixed("route", t.route), fixed("result", "miss")});
      break;
    case router::CacheOutcome::kBypass:
      counter(MetricFamily::kCacheRequests, {fixed("route", t.route), fixed("result", "bypass")});
      break;
  }
  if (t.cache.follower && t.answered_from_cache()) counter(MetricFamily::kCacheFollowers, {fixed("route", t.route)});
  if (t.finished && t.mono_end_us > 0) pts.add(MetricFamily::kOverhead, pts.add_set({}), seconds(t.overhead_us));

  // Each tier attempt in route order; verifier calls follow the tier they scored.
  const TierAttempt* last_tier = nullptr;
  for (const TierAttempt& a : t.tiers) {
    if (a.status != TierStatus::kVerifier) last_tier = &a;
    // The tier's upstream attempts: the first, retries of the same target, fallbacks.
    for (size_t i = 0; i < a.transport.size(); ++i) {
      const router::AttemptRecord& r = a.transport[i];
      const char* kind =
          i == 0 ? "first"
          : r.provider == a.transport[i - 1].provider && r.model == a.transport[i - 1].model
              ? "retry"
              : "fallback";
      counter(MetricFamily::kUpstreamRequests,
              {fixed("provider", r.provider), fixed("outcome", upstream_outcome(r, pts)), fixed("attempt", kind)});
    }
    if (a.cost != Money{} || a.usage.reported)
      pts.add(MetricFamily::kCost, pts.add_set(cost_labels(t, model_label(t, a.model))), 0, a.cost);
    if (a.price == policies::PriceSource::kUnknown) counter(MetricFamily::kUnpricedRequests, {model_label(t, a.model)});
    if (a.provider.empty()) continue;  // no upstream answered: no operation to describe
    const uint32_t op = pts.add_set(operation_labels(t, a));
    const bool failed = a.status == TierStatus::kError;
    if (a.last_byte_us > a.started_us)
      pts.add(MetricFamily::kOperationDuration, op, seconds(a.last_byte_us - a.started_us), {},
              failed ? fixed("error_type", "upstream_error") : MetricLabel{});
    if (!failed && a.first_byte_us > a.started_us)
      pts.add(MetricFamily::kTimeToFirstToken, op, seconds(a.first_byte_us - a.started_us));
    if (!failed && a.usage.output_tokens > 1 && a.last_byte_us > a.first_byte_us && a.first_byte_us > 0)
      pts.add(MetricFamily::kTimePerOutputToken, op,
              seconds(a.last_byte_us - a.first_byte_us) / static_cast<double>(a.usage.output_tokens - 1));
    if (a.usage.reported || a.usage.input_tokens > 0 || a.usage.output_tokens > 0) {
      add_tokens(pts, op, "input", a.usage.input_tokens);
      add_tokens(pts, op, "output", a.usage.output_tokens);
      if (a.usage.cached_input_tokens > 0) add_tokens(pts, op, "cache_read", a.usage.cached_input_tokens);
      if (const int64_t w = a.usage.cache_write_5m_tokens + a.usage.cache_write_1h_tokens; w > 0)
        add_tokens(pts, op, "cache_write", w);
    }
  }
  // Every tier but the last one tried passed the request on (rejected or failed).
  int tier_number = 0;
  for (const TierAttempt& a : t.tiers) {
    if (a.status == TierStatus::kVerifier) continue;
    ++tier_number;
    if (&a == last_tier) {
      if (a.status == TierStatus::kAccepted)
        counter(MetricFamily::kTierAnswers,
                {fixed("route", t.route), fixed("tier", number_text(tier_number, pts)), model_label(t, a.model)});
      break;
    }
    counter(MetricFamily::kEscalations, {fixed("route", t.route), fixed("tier", number_text(tier_number, pts)),
                                         fixed("reason", escalation_reason(a))});
  }

  // Baseline and savings belong to the answer (the ledger's answer model: "(cache)" for
  // a hit); costs above to each tier's model, so over any grouping without `model`
  // savings − overspend = baseline − cost.
  if (router::has_ledger_row(t) && (t.baseline_known || t.cost() != Money{})) {
    const Money baseline = t.booked_baseline();
    const Money cost = t.cost();
    const uint32_t labels = pts.add_set(
        cost_labels(t, t.answered_from_cache() ? fixed("model", "(cache)") : model_label(t, t.answer_model)));
    pts.add(MetricFamily::kBaseline, labels, 0, baseline);
    if (baseline >= cost)
      pts.add(MetricFamily::kSavings, labels, 0, baseline - cost);
    else
      pts.add(MetricFamily::kOverspend, labels, 0, cost - baseline);
  }
  return pts;
}

}  // namespace frugal::gateway
