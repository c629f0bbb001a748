#pragma once
// What one finished request adds to the Prometheus metrics: a pure function of its trace
// (router/request_trace.h), like the response headers and the ledger row. The registry
// (gateway/metrics.h) folds client-chosen label values and sums the points.
//
// Per tier attempt (each is a GenAI client operation against an upstream; verifier calls
// included):
//   gen_ai_client_token_usage{gen_ai_token_type=input|output|cache_read|cache_write}
//   gen_ai_client_operation_duration_seconds (error_type on a failed attempt)
//   gen_ai_server_time_to_first_token_seconds, gen_ai_server_time_per_output_token_seconds
//   frugal_cost_usd_total{model=<the tier's model>}
//   frugal_upstream_requests_total{provider,outcome,attempt}, one per transport attempt
//   frugal_escalations_total{route,tier,reason}, for a tier that passed the request on
//   frugal_unpriced_requests_total{model}, a tier whose model used tokens but has no
//   price (booked at 0)
// Per request:
//   frugal_requests_total{status}, frugal_cache_requests_total{route,result},
//   frugal_cache_followers_total{route} (a hit that followed another request's live answer),
//   frugal_tier_answers_total{route,tier,model} (the tier whose answer the client got),
//   frugal_baseline_usd_total / frugal_savings_usd_total / frugal_overspend_usd_total
//   {model=<the answering model>}, frugal_overhead_seconds
#include <array>
#include <cstdint>
#include <forward_list>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "core/fast_hash.h"
#include "core/money.h"
#include "router/request_trace.h"

namespace frugal::gateway {

enum class MetricFamily : uint8_t {
  kTokenUsage,          // histogram, tokens
  kOperationDuration,   // histogram, seconds
  kTimeToFirstToken,    // histogram, seconds
  kTimePerOutputToken,  // histogram, seconds
  kOverhead,            // histogram, seconds
  kCost,                // counter, USD (money)
  kBaseline,            // counter, USD (money)
  kSavings,             // counter, USD (money)
  kOverspend,           // counter, USD (money)
  kRequests,            // counter
  kCacheRequests,       // counter
  kEscalations,         // counter
  kUpstreamRequests,    // counter
  kCacheFollowers,      // counter
  kTierAnswers,         // counter
  kUnpricedRequests,    // counter
};
inline constexpr size_t kMetricFamilies = 16;

// Where a label's value comes from, for bounding its cardinality.
enum class LabelSource : uint8_t {
  kFixed,  // gateway or policy vocabulary (statuses, routes, providers): kept as is
  kModel,  // a model name a client may choose (passthrough)
  kTeam,   // a team (the x-frugal-team header, or the config's teams)
  kKey,    // a key id (any API key)
};

struct MetricLabel {
  std::string_view name;   // a string literal: the registry tells names apart by address
  std::string_view value;  // into the trace, a literal, or MetricPoints::text
  LabelSource source = LabelSource::kFixed;
};

namespace metric_hash {
using fast_hash::mix;
using fast_hash::same_bytes;
using fast_hash::text;
// A label name's identity: its address and size. Names are string literals
// (MetricLabel), so equal addresses mean equal names; the same name at two addresses
// only interns the series twice.
inline uint64_t name_id(std::string_view name) {
  return reinterpret_cast<uintptr_t>(name.data()) ^ (static_cast<uint64_t>(name.size()) << 48);
}
}  // namespace metric_hash

// A point's labels: at most kMaxLabels, kept inline (a request adds a dozen points), with
// a hash of their names and raw values, computed as they are added: a set of labels that
// several points share (a tier's operation, a request's cost labels) is hashed once.
class MetricLabels {
 public:
  static constexpr size_t kMaxLabels = 6;
  MetricLabels() = default;
  MetricLabels(std::initializer_list<MetricLabel> ls) {
    for (const MetricLabel& l : ls) push_back(l);
  }
  void push_back(const MetricLabel& l) {
    if (n_ == kMaxLabels) return;
    slots_.l[n_++] = l;
    hash_ = metric_hash::text(metric_hash::mix(hash_, metric_hash::name_id(l.name)), l.value);
  }
  const MetricLabel* begin() const { return slots_.l; }
  const MetricLabel* end() const { return slots_.l + n_; }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  uint64_t hash() const { return hash_; }

 private:
  union Slots {
    Slots() {}  // the labels past n_ are never read: not zeroed for each set a request makes
    MetricLabel l[kMaxLabels];
  } slots_;
  uint8_t n_ = 0;
  uint64_t hash_ = 0x66727567616cull;
};

// A point: its family, a label set that it may share with other points of the request
// (MetricPoints::sets), and at most one label of its own (`extra`: gen_ai_token_type,
// error_type), which follows the set's labels.
struct MetricPoint {
  MetricFamily family;
  uint32_t set = 0;     // index into MetricPoints::sets
  MetricLabel extra{};  // none when its name is empty
  double value = 0;     // a histogram's observation or a counter's increment
  Money money;          // a USD counter's increment (exact)
};

// One request's points. Label values view the trace they were made from (which must
// outlive them), static text (statuses and tier numbers below 1000), or `text`, which
// owns the rare values computed here; a list never moves what it holds, and an empty one
// allocates nothing. Points that share labels share one set: the registry looks up and
// checks each set once per request, not once per point.
struct MetricPoints {
  std::vector<MetricLabels> sets;
  std::vector<MetricPoint> points;
  std::forward_list<std::string> text;

  std::string_view own(std::string s) { return text.emplace_front(std::move(s)); }
  uint32_t add_set(const MetricLabels& l) {
    sets.push_back(l);
    return static_cast<uint32_t>(sets.size() - 1);
  }
  void add(MetricFamily f, uint32_t set, double value, Money money = {}, MetricLabel extra = {}) {
    points.push_back({f, set, extra, value, money});
  }
  // A point's labels in order: its set's, then its own.
  MetricLabels labels(const MetricPoint& p) const {
    MetricLabels l = sets[p.set];
    if (!p.extra.name.empty()) l.push_back(p.extra);
    return l;
  }
  auto begin() const { return points.begin(); }
  auto end() const { return points.end(); }
  size_t size() const { return points.size(); }
};

MetricPoints metric_points(const router::RequestTrace& t);
MetricPoints metric_points(const router::RequestTrace&& t) = delete;  // the points would view a temporary

// "ok", "http_<status>" or "error" (no answer: connection, timeout, broken body).
std::string upstream_outcome(const router::AttemptRecord& a);
// The same, a literal or owned by `pts`.
std::string_view upstream_outcome(const router::AttemptRecord& a, MetricPoints& pts);
// A bounded name for why a tier passed the request on: the acceptance signal that
// rejected it (the leading identifier of its reason: mean_logprob, json_schema, ...),
// "rejected" without one, or "error" when the tier failed.
// A view into the tier's reason, or a literal.
std::string_view escalation_reason(const router::TierAttempt& t);

}  // namespace frugal::gateway
