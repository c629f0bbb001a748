#pragma once
// The x-frugal-* response headers and a stream's trailers: pure functions of the
// request's trace (router/request_trace.h), evaluated when the response head (or the
// terminating chunk) is written, so they say what the trace knows at that moment.
//
//   x-frugal-request-type, x-frugal-route   once classified
//   retry-after                             a budget denial, until the period resets;
//                                           a rate limit, until it has room again
//   x-frugal-budget-warning                 a soft budget limit passed
//   x-frugal-cache                          hit | miss | bypass, once looked up
//   x-frugal-provider, x-frugal-model       where the answer comes from (a hit: the
//                                           stored answer's model, no provider)
//   x-frugal-attempts                       upstream attempts, when more than one
//   x-frugal-tier                           the answering tier, 1-based
//   x-frugal-cost-usd                       cost so far (exact decimal); "unknown" when a
//                                           model that used tokens has no price
//   x-frugal-price                          "unknown" when the cost or the baseline has
//                                           a model without a price
//   x-frugal-cost-final                     false while a live answer is still running
//   x-frugal-savings-usd                    baseline − cost, once the cost is final
//                                           ("unknown" with an unknown price)
//   x-frugal-shaping                        the route's output shaping that changed the
//                                           request (max_tokens_cap,stop,...)
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "router/request_trace.h"

namespace frugal::gateway {

using HeaderList = std::vector<std::pair<std::string_view, std::string>>;

inline bool trace_has_cost(const router::RequestTrace& t) { return t.dispatched || t.answered_from_cache(); }

// Calls fn(name, value) for each of the trace's headers, in order (names are string
// literals). The response writers call it straight into the head they build.
template <class Fn>
void for_each_response_header(const router::RequestTrace& t, Fn&& fn) {
  if (t.classified) {
    fn("x-frugal-request-type", t.request_type);
    fn("x-frugal-route", t.route);
  }
  if (!t.budget.allowed && t.budget.retry_after_s > 0) fn("retry-after", std::to_string(t.budget.retry_after_s));
  if (!t.limit.allowed && t.limit.retry_after_s > 0) fn("retry-after", std::to_string(t.limit.retry_after_s));
  if (t.budget.soft_exceeded) fn("x-frugal-budget-warning", t.budget.message);
  switch (t.cache.outcome) {
    case router::CacheOutcome::kNone: break;
    case router::CacheOutcome::kHit: fn("x-frugal-cache", "hit"); break;
    case router::CacheOutcome::kMiss: fn("x-frugal-cache", "miss"); break;
    case router::CacheOutcome::kBypass: fn("x-frugal-cache", "bypass"); break;
  }
  if (t.answered_from_cache()) {
    fn("x-frugal-model", t.cache.model);
  } else if (t.answer_tier >= 0) {
    fn("x-frugal-provider", t.answer_provider);
    fn("x-frugal-model", t.answer_upstream_model);
    if (const size_t n = t.transport_attempts(); n > 1) fn("x-frugal-attempts", std::to_string(n));
    fn("x-frugal-tier", std::to_string(t.answer_tier + 1));
  }
  if (t.shaping.applied) fn("x-frugal-shaping", router::shaping_names(t.shaping.applied));
  if (!trace_has_cost(t)) return;
  const Money cost = t.cost();
  const bool unknown = t.price_unknown();  // the cost's or the baseline's
  fn("x-frugal-cost-usd", t.cost_unknown() ? std::string("unknown") : cost.to_usd_string());
  if (unknown) fn("x-frugal-price", "unknown");
  // A live answer's cost is known once it ends; everything else before the head goes out.
  const bool final = t.finished || t.answered_from_cache() || !t.answer_live;
  fn("x-frugal-cost-final", final ? "true" : "false");
  if (final) fn("x-frugal-savings-usd", unknown ? std::string("unknown") : (t.booked_baseline() - cost).to_usd_string());
}

HeaderList response_headers(const router::RequestTrace& t);
// The final cost figures for a stream's terminating chunk (announced by its head's
// `Trailer:` line); empty when the request has no cost record.
std::vector<std::pair<std::string, std::string>> trailers(const router::RequestTrace& t);

}  // namespace frugal::gateway
