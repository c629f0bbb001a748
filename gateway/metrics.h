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
  // Open addressing by a 64-bit hash, linear probing, at most half full: a request looks
  // up a few label sets and a dozen points, and std::unordered_map's buckets cost more
  // than that. Entries are never removed; equal hashes of different content coexist.
  template <class V>
  class HashSlots {
   public:
    template <class Eq>
    V* find(uint64_t hash, Eq&& eq) {
      if (slots_.empty()) return nullptr;
      const size_t mask = slots_.size() - 1;
      for (size_t i = hash & mask;; i = (i + 1) & mask) {
        Slot& s = slots_[i];
        if (!s.used) return nullptr;
        if (s.hash == hash && eq(s.v)) return &s.v;
      }
    }
    V& insert(uint64_t hash, V v);

   private:
    struct Slot {
      uint64_t hash = 0;
      bool used = false;
      V v;
    };
    std::vector<Slot> slots_;
    size_t used_ = 0;
  };
  // A label set seen before (names and raw, unfolded values; only sets whose values all
  // pass unfolded are kept, so there are no more of them than series): its number.
  struct SetEntry {
    std::string raw;  // each label as <name id, 8 bytes><value size, 4 bytes><value>
    uint32_t id = 0;
  };
  // A point seen before: its family, set number and own label, and its series.
  struct PointEntry {
    MetricFamily family{};
    uint32_t set = 0;
    uint64_t extra_name = 0;  // the own label's name id (0: none)
    std::string extra_value;
    Series* series = nullptr;  // into `series` (unordered_map nodes never move)
  };
  struct Data {
    // by label text
    std::array<std::unordered_map<std::string, Series, TextHash, std::equal_to<>>, kMetricFamilies> series;
    HashSlots<SetEntry> sets;
    HashSlots<PointEntry> points;
    uint32_t next_set = 0;
    std::vector<uint32_t> set_ids;    // scratch: the request's sets' numbers
    std::array<TextSet, 3> admitted;  // values this thread saw admitted
    std::string key;                  // scratch: the label text of the point being added
  };
  struct Admission {
    std::mutex mu;
    TextSet values;  // immutable once `full`
    std::atomic<bool> full{false};
  };

  // `count`: a folded value adds to folded() (once per point, not when a set is checked).
  std::string_view fold(LabelSource src, std::string_view value, Data& d, const config::GatewayConfig& cfg,
                        bool count = true);
  // The set's number, or kNoSet when one of its values folds (such points take the full
  // path every time).
  uint32_t set_id(const MetricLabels& set, Data& d, const config::GatewayConfig& cfg);
  // The full path: folds the labels, builds the label text, finds or makes the series.
  Series& series_of(MetricFamily family, const MetricLabels& labels, Data& d, const config::GatewayConfig& cfg);
  static constexpr uint32_t kNoSet = UINT32_MAX;

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
