#include "gateway/trace_headers.h"

namespace frugal::gateway {

namespace {

bool has_cost(const router::RequestTrace& t) { return t.dispatched || t.answered_from_cache(); }
// A live answer's cost is known once it ends; everything else before the head goes out.
bool cost_final(const router::RequestTrace& t) { return t.finished || t.answered_from_cache() || !t.answer_live; }

}  // namespace

void append_response_headers(const router::RequestTrace& t, HeaderList& out) {
  if (t.classified) {
    out.emplace_back("x-frugal-request-type", t.request_type);
    out.emplace_back("x-frugal-route", t.route);
  }
  if (!t.budget.allowed && t.budget.retry_after_s > 0)
    out.emplace_back("retry-after", std::to_string(t.budget.retry_after_s));
  if (t.budget.soft_exceeded) out.emplace_back("x-frugal-budget-warning", t.budget.message);
  switch (t.cache.outcome) {
    case router::CacheOutcome::kNone: break;
    case router::CacheOutcome::kHit: out.emplace_back("x-frugal-cache", "hit"); break;
    case router::CacheOutcome::kMiss: out.emplace_back("x-frugal-cache", "miss"); break;
    case router::CacheOutcome::kBypass: out.emplace_back("x-frugal-cache", "bypass"); break;
  }
  if (t.answered_from_cache()) {
    out.emplace_back("x-frugal-model", t.cache.model);
  } else if (t.answer_tier >= 0) {
    out.emplace_back("x-frugal-provider", t.answer_provider);
    out.emplace_back("x-frugal-model", t.answer_upstream_model);
    if (const size_t n = t.transport_attempts(); n > 1) out.emplace_back("x-frugal-attempts", std::to_string(n));
    out.emplace_back("x-frugal-tier", std::to_string(t.answer_tier + 1));
  }
  if (!has_cost(t)) return;
  const Money cost = t.cost();
  out.emplace_back("x-frugal-cost-usd", cost.to_usd_string());
  const bool final = cost_final(t);
  out.emplace_back("x-frugal-cost-final", final ? "true" : "false");
  if (final) out.emplace_back("x-frugal-savings-usd", ((t.baseline_known ? t.baseline : Money{}) - cost).to_usd_string());
}

HeaderList response_headers(const router::RequestTrace& t) {
  HeaderList out;
  append_response_headers(t, out);
  return out;
}

std::vector<std::pair<std::string, std::string>> trailers(const router::RequestTrace& t) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!has_cost(t)) return out;
  const Money cost = t.cost();
  out.emplace_back("x-frugal-cost-usd", cost.to_usd_string());
  out.emplace_back("x-frugal-savings-usd", ((t.baseline_known ? t.baseline : Money{}) - cost).to_usd_string());
  return out;
}

}  // namespace frugal::gateway
