#pragma once
// OTLP metrics: each finished request's figures (a pure function of its record,
// metric_observations(trace)) aggregated in-process — cumulative sums and explicit-bucket
// histograms per attribute set — and read out every export interval.
// docs/observability.md ("OTLP") lists every instrument.
#include <cstdint>
#include <unordered_map>
#include <mutex>
#include <string>
#include <vector>

#include "core/money.h"
#include "gateway/otlp/span.h"
#include "router/request_trace.h"

namespace frugal::otlp {

enum class Instrument : uint8_t {
  kTokenUsage,         // gen_ai.client.token.usage          histogram {token}
  kOperationDuration,  // gen_ai.client.operation.duration   histogram s
  kTimeToFirstToken,   // gen_ai.server.time_to_first_token  histogram s
  kCost,               // frugal.cost.usd                    sum {USD}
  kBaseline,           // frugal.baseline.usd                sum {USD}
  kSavings,            // frugal.savings.usd                 sum {USD} (not monotonic)
  kRequests,           // frugal.requests                    sum {request}
};
inline constexpr size_t kInstrumentCount = 7;

struct Observation {
  Instrument instrument;
  Attributes attributes;
  double value = 0;  // histograms, requests
  Money money;       // the USD sums, kept exact until export
};

// What one finished request adds to the metrics. The observations borrow strings from `t`
// (span.h): they are valid while `t` lives.
std::vector<Observation> metric_observations(const router::RequestTrace& t);
std::vector<Observation> metric_observations(const router::RequestTrace&& t) = delete;  // would dangle

struct NumberPoint {
  Attributes attributes;
  bool is_int = false;
  int64_t as_int = 0;
  double as_double = 0;
};

struct HistogramPoint {
  Attributes attributes;
  uint64_t count = 0;
  double sum = 0, min = 0, max = 0;
  std::vector<uint64_t> bucket_counts;  // bounds.size() + 1
};

struct MetricData {
  std::string name, description, unit;
  bool histogram = false;
  bool monotonic = true;          // sums
  std::vector<double> bounds;     // histograms
  int64_t start_unix_ns = 0;      // cumulative since
  int64_t time_unix_ns = 0;
  std::vector<NumberPoint> numbers;
  std::vector<HistogramPoint> histograms;
};

// Counters of the exporter itself, reported with the request metrics.
struct ExporterCounters {
  uint64_t spans_exported = 0;
  uint64_t spans_dropped = 0;
};

class MetricsAggregator {
 public:
  // Past `max_series` attribute sets an instrument folds new ones into one series with
  // `otel.metric.overflow=true` (the OpenTelemetry SDKs' cardinality limit).
  explicit MetricsAggregator(int64_t start_unix_ns, size_t max_series = 2000);
  void add(const router::RequestTrace& t);  // thread-safe
  void add(const std::vector<Observation>& obs);
  // Every instrument with at least one point, cumulative since start, plus the exporter's
  // counters.
  std::vector<MetricData> collect(int64_t now_unix_ns, const ExporterCounters& self) const;

 private:
  struct Series {
    Attributes attributes;  // owned strings
    double sum = 0;
    Money money;
    uint64_t count = 0;
    double min = 0, max = 0;
    std::vector<uint64_t> buckets;
  };
  // One observation into its series (hash: of its attribute set); mu_ held.
  void add_locked(Instrument instrument, const Attributes& attributes, uint64_t hash, double value, const Money& money);

  mutable std::mutex mu_;
  int64_t start_unix_ns_;
  size_t max_series_;
  // Per instrument: its series in order of appearance, and their index by a hash of the
  // attribute set (a hit is confirmed by comparing the attributes).
  std::vector<Series> series_[kInstrumentCount];
  std::unordered_multimap<uint64_t, uint32_t> index_[kInstrumentCount];
};

}  // namespace frugal::otlp
