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
#include <cstring>
#include <forward_list>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

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
inline uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 29);
}
inline uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// A word made of all n < 8 bytes at p (the first and last four overlap for n >= 4).
inline uint64_t short_word(const char* p, size_t n) {
  if (n >= 4) return static_cast<uint64_t>(load32(p)) << 32 | load32(p + n - 4);
  if (n == 0) return 0;
  const auto b = [p](size_t i) { return static_cast<uint64_t>(static_cast<unsigned char>(p[i])); };
  return b(0) | b(n / 2) << 8 | b(n - 1) << 16;
}
inline uint64_t text(uint64_t h, std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  if (n < 8) return mix(h, short_word(p, n) ^ (static_cast<uint64_t>(n) << 56));
  for (size_t i = 0; i + 8 < n; i += 8) h = mix(h, load64(p + i));
  return mix(h, load64(p + n - 8) ^ (static_cast<uint64_t>(n) << 56));  // the last 8, overlapping
}
// Equal bytes, inline: label values are short, and a call to memcmp costs more than
// comparing them.
inline bool same_bytes(const char* a, const char* b, size_t n) {
  if (n < 8) return short_word(a, n) == short_word(b, n);
  for (size_t i = 0; i + 8 < n; i += 8)
    if (load64(a + i) != load64(b + i)) return false;
  return load64(a + n - 8) == load64(b + n - 8);
}
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
