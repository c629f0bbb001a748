#pragma once
// The Prometheus metrics of finished requests: metric_points(trace) (gateway/
// metric_points.h) summed per label set, rendered in the Prometheus text format (0.0.4)
// at scrape time. docs/observability.md lists every family and label.
//
// Threading: record() on the request's I/O thread touches only that thread's shard (its
// own, uncontended lock); render() from any thread visits the shards one by one. A
// client-chosen label value (model, team, key id) is admitted once per process under a
// small lock and then cached per thread; past `max_label_values` admitted values per
// label, new ones are counted as "other" (values named in the config always pass).
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config/config.h"
#include "core/money.h"
#include "gateway/metric_points.h"
#include "gateway/thread_shards.h"

namespace frugal::gateway {

inline constexpr std::string_view kOtherLabelValue = "other";

class MetricsRegistry {
 public:
  explicit MetricsRegistry(size_t max_label_values);

  // Adds one request's points. `cfg`: the request's configuration (names it lists are
  // never folded).
  void record(const MetricPoints& points, const config::GatewayConfig& cfg);
  // Every family, HELP and TYPE lines included, series sorted by label text.
  std::string render();
  // Label values counted as "other" so far (one per metric point).
  int64_t folded() const { return folded_.load(std::memory_order_relaxed); }

 private:
  struct Series {
    Money money;
    double value = 0;
    std::vector<uint64_t> buckets;  // per upper bound, not cumulative
    double sum = 0;
    uint64_t count = 0;
  };
  // Looked up by std::string_view: a series that exists costs no allocation.
  struct TextHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using TextSet = std::unordered_set<std::string, TextHash, std::equal_to<>>;
  // A point seen before, found by a hash of its family and raw label names and values
  // (no label text built, nothing folded): `raw` holds them to confirm the match. Only
  // points whose values all passed unfolded are kept (a folded value's point takes the
  // full path each time), so there are no more of them than series.
  struct Interned {
    Series* series;  // into `series` (unordered_map nodes never move)
    std::string raw;
  };
  struct Data {
    // by label text
    std::array<std::unordered_map<std::string, Series, TextHash, std::equal_to<>>, kMetricFamilies> series;
    std::unordered_map<uint64_t, Interned> interned;  // by point_hash
    std::array<TextSet, 3> admitted;  // values this thread saw admitted
    std::string key;                  // scratch: the label text of the point being added
  };
  struct Admission {
    std::mutex mu;
    TextSet values;  // immutable once `full`
    std::atomic<bool> full{false};
  };

  std::string_view fold(LabelSource src, std::string_view value, Data& d, const config::GatewayConfig& cfg);
  // The full path: folds the labels, builds the label text, finds or makes the series,
  // and interns the point when nothing was folded.
  Series& intern(const MetricPoint& p, uint64_t hash, Data& d, const config::GatewayConfig& cfg);

  const size_t max_values_;
  std::array<Admission, 3> admission_;
  std::atomic<int64_t> folded_{0};
  ThreadShards<Data> shards_;
};

// Writes the Prometheus text format.
class PromText {
 public:
  explicit PromText(std::string& out) : out_(out) {}
  // "# HELP name help\n# TYPE name type\n"
  void family(std::string_view name, std::string_view type, std::string_view help);
  // `labels`: already rendered `a="x",b="y"` (possibly empty); `value` a number's text.
  void sample(std::string_view name, std::string_view labels, std::string_view value);
  void sample(std::string_view name, std::string_view labels, double value);

 private:
  std::string& out_;
};

// `name="value"` with the value escaped (\\, \", \n).
void append_label(std::string& out, std::string_view name, std::string_view value);
// The shortest text that reads back as `v` ("+Inf", "NaN" where needed).
std::string prom_number(double v);

}  // namespace frugal::gateway
