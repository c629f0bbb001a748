#include "gateway/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>

namespace frugal::gateway {

namespace {

enum class Kind : uint8_t { kCounter, kMoney, kHistogram };

struct FamilyInfo {
  const char* name;
  Kind kind;
  const char* help;
  std::vector<double> bounds;  // histogram bucket upper bounds
};

// Bucket bounds: the GenAI semantic conventions' advice where they give one.
const std::array<FamilyInfo, kMetricFamilies>& families() {
  static const std::array<FamilyInfo, kMetricFamilies> f{{
      {"gen_ai_client_token_usage",
       Kind::kHistogram,
       "Tokens per upstream operation, by type (input includes cache_read and cache_write tokens).",
       {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}},
      {"gen_ai_client_operation_duration_seconds",
       Kind::kHistogram,
       "Duration of each upstream operation (tier attempt or verifier call), retries included.",
       {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}},
      {"gen_ai_server_time_to_first_token_seconds",
       Kind::kHistogram,
       "Time from dispatching an upstream operation to its first answer byte.",
       {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
        10.0}},
      {"gen_ai_server_time_per_output_token_seconds",
       Kind::kHistogram,
       "Time per output token after the first of an upstream operation.",
       {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5}},
      {"frugal_overhead_seconds",
       Kind::kHistogram,
       "Time frugal spent on a request itself, upstream waits excluded (x-frugal-overhead-us).",
       {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25}},
      {"frugal_cost_usd_total",
       Kind::kMoney,
       "USD charged by upstreams, by the model of each tier tried.",
       {}},
      {"frugal_baseline_usd_total",
       Kind::kMoney,
       "USD the route's reference model would have charged for the answers, by answering model.",
       {}},
      {"frugal_savings_usd_total",
       Kind::kMoney,
       "Baseline minus cost of requests that cost less than their baseline, by answering model.",
       {}},
      {"frugal_overspend_usd_total",
       Kind::kMoney,
       "Cost minus baseline of requests that cost more than their baseline, by answering model.",
       {}},
      {"frugal_requests_total",
       Kind::kCounter,
       "Chat requests, by the HTTP status the client got.",
       {}},
      {"frugal_cache_requests_total", Kind::kCounter, "Exact-cache lookups, by route and result.",
       {}},
      {"frugal_escalations_total",
       Kind::kCounter,
       "Cascade tiers that passed a request on to the next tier, by route, tier (1-based) and "
       "reason.",
       {}},
      {"frugal_upstream_requests_total",
       Kind::kCounter,
       "Upstream HTTP attempts, by provider, outcome and attempt (first, retry, fallback).",
       {}},
      {"frugal_cache_followers_total",
       Kind::kCounter,
       "Cache hits served by following another request's live answer (single flight), by route.",
       {}},
      {"frugal_tier_answers_total",
       Kind::kCounter,
       "Answers the client got from a cascade tier, by route, tier (1-based) and model.",
       {}},
      {"frugal_unpriced_requests_total",
       Kind::kCounter,
       "Tier attempts (and verifier calls) booked with price unknown: the model used tokens but has no "
       "price in the policy or the built-in catalogue, by model.",
       {}},
  }};
  return f;
}

// As Prometheus checks label values (Go's utf8.ValidString): no overlong forms, no
// surrogates, nothing past U+10FFFF.
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c < 0x80)
      n = 0;
    else if (c >= 0xC2 && c <= 0xDF)
      n = 1;
    else if (c >= 0xE0 && c <= 0xEF)
      n = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
      n = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
      return false;
    if (n > s.size() - i - 1) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

bool configured(LabelSource src, std::string_view v, const config::GatewayConfig& cfg) {
  switch (src) {
    case LabelSource::kFixed:
      return true;
    case LabelSource::kModel:
      return std::any_of(cfg.aliases.begin(), cfg.aliases.end(),
                         [&](const auto& a) { return a.name == v; });
    case LabelSource::kTeam:
      return std::any_of(cfg.key_teams.begin(), cfg.key_teams.end(),
                         [&](const auto& kt) { return kt.second == v; });
    case LabelSource::kKey:
      return cfg.key_teams.count(std::string(v)) > 0;
  }
  return false;
}

}  // namespace

void append_label(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += "=\"";
  // Runs without a character to escape are appended whole: this runs for every label of
  // every point of every request.
  size_t from = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out.append(value.data() + from, i - from);
    out += c == '\n' ? "\\n" : c == '"' ? "\\\"" : "\\\\";
    from = i + 1;
  }
  out.append(value.data() + from, value.size() - from);
  out += '"';
}

std::string prom_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void PromText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += help;
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PromText::sample(std::string_view name, std::string_view labels, std::string_view value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    out_ += labels;
    out_ += '}';
  }
  out_ += ' ';
  out_ += value;
  out_ += '\n';
}

void PromText::sample(std::string_view name, std::string_view labels, double value) {
  sample(name, labels, prom_number(value));
}

MetricsRegistry::MetricsRegistry(size_t max_label_values) : max_values_(max_label_values) {}

std::string_view MetricsRegistry::fold(LabelSource src, std::string_view value, Data& d,
                                       const config::GatewayConfig& cfg, bool count) {
  if (src == LabelSource::kFixed || value.empty()) return value;
  auto& mine = d.admitted[static_cast<size_t>(src) - 1];
  if (mine.find(value) != mine.end()) return value;  // only valid UTF-8 is ever admitted
  if (!valid_utf8(value)) {
    if (count) folded_.fetch_add(1, std::memory_order_relaxed);
    return kOtherLabelValue;
  }
  if (configured(src, value, cfg)) {
    mine.emplace(value);
    return value;
  }
  Admission& a = admission_[static_cast<size_t>(src) - 1];
  bool admitted = false;
  if (a.full.load(std::memory_order_acquire)) {
    admitted = a.values.find(value) != a.values.end();  // no writer once full
  } else {
    std::lock_guard lock(a.mu);
    admitted = a.values.find(value) != a.values.end();
    if (!admitted && a.values.size() < max_values_) {
      a.values.emplace(value);
      admitted = true;
      if (a.values.size() == max_values_) a.full.store(true, std::memory_order_release);
    }
  }
  if (!admitted) {
    if (count) folded_.fetch_add(1, std::memory_order_relaxed);
    return kOtherLabelValue;
  }
  mine.emplace(value);
  return value;
}

namespace {

using metric_hash::mix;
using metric_hash::name_id;

// SetEntry::raw: each label as <name id, 8 bytes><value size, 4 bytes><value>.
void append_label_raw(std::string& out, const MetricLabel& l) {
  const uint64_t id = name_id(l.name);
  const auto n = static_cast<uint32_t>(l.value.size());
  out.append(reinterpret_cast<const char*>(&id), sizeof id);
  out.append(reinterpret_cast<const char*>(&n), sizeof n);
  out.append(l.value);
}

bool raw_matches(std::string_view raw, const MetricLabels& labels) {
  for (const MetricLabel& l : labels) {
    uint64_t id;
    uint32_t n;
    if (raw.size() < sizeof id + sizeof n) return false;
    std::memcpy(&id, raw.data(), sizeof id);
    std::memcpy(&n, raw.data() + sizeof id, sizeof n);
    raw.remove_prefix(sizeof id + sizeof n);
    if (id != name_id(l.name) || n != l.value.size() || raw.size() < n ||
        !metric_hash::same_bytes(raw.data(), l.value.data(), n))
      return false;
    raw.remove_prefix(n);
  }
  return raw.empty();
}

// A point's key in PointEntry's table: its set, family and own label (`extra_name`: the
// label's name id, 0 for none).
uint64_t point_hash(uint32_t set, const MetricPoint& p, uint64_t extra_name) {
  const uint64_t h = mix(set, static_cast<uint64_t>(p.family) + 1);
  return extra_name == 0 ? h : metric_hash::text(mix(h, extra_name), p.extra.value);
}

}  // namespace

template <class V>
V& MetricsRegistry::HashSlots<V>::insert(uint64_t hash, V v) {
  if ((used_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old(std::max<size_t>(64, slots_.size() * 2));
    old.swap(slots_);
    used_ = 0;
    for (Slot& s : old)
      if (s.used) insert(s.hash, std::move(s.v));
  }
  const size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  while (slots_[i].used) i = (i + 1) & mask;
  slots_[i].hash = hash;
  slots_[i].used = true;
  slots_[i].v = std::move(v);
  ++used_;
  return slots_[i].v;
}

uint32_t MetricsRegistry::set_id(const MetricLabels& set, Data& d, const config::GatewayConfig& cfg) {
  const uint64_t hash = set.hash();
  if (const SetEntry* e = d.sets.find(hash, [&](const SetEntry& e) { return raw_matches(e.raw, set); }))
    return e->id;
  for (const MetricLabel& l : set) {
    const std::string_view v = fold(l.source, l.value, d, cfg, false);
    if (v.data() != l.value.data() || v.size() != l.value.size()) return kNoSet;
  }
  SetEntry e;
  for (const MetricLabel& l : set) append_label_raw(e.raw, l);
  e.id = d.next_set++;
  return d.sets.insert(hash, std::move(e)).id;
}

MetricsRegistry::Series& MetricsRegistry::series_of(MetricFamily family, const MetricLabels& labels, Data& d,
                                                    const config::GatewayConfig& cfg) {
  std::string& key = d.key;
  key.clear();
  for (const MetricLabel& l : labels) {
    if (!key.empty()) key += ',';
    append_label(key, l.name, fold(l.source, l.value, d, cfg));
  }
  auto& series = d.series[static_cast<size_t>(family)];
  auto it = series.find(std::string_view(key));
  if (it == series.end()) it = series.emplace(key, Series{}).first;
  return it->second;
}

void MetricsRegistry::record(const MetricPoints& points, const config::GatewayConfig& cfg) {
  auto& shard = shards_.local();
  std::lock_guard lock(shard.mu);
  Data& d = shard.data;
  d.set_ids.clear();
  for (const MetricLabels& set : points.sets) d.set_ids.push_back(set_id(set, d, cfg));
  const auto& fams = families();
  for (const MetricPoint& p : points) {
    const uint32_t set = d.set_ids[p.set];
    Series* found = nullptr;
    // A point's own label is gateway vocabulary (kFixed): it never folds.
    const bool internable = set != kNoSet && p.extra.source == LabelSource::kFixed;
    const uint64_t extra_name = p.extra.name.empty() ? 0 : name_id(p.extra.name);
    const uint64_t hash = internable ? point_hash(set, p, extra_name) : 0;
    if (internable) {
      const PointEntry* e = d.points.find(hash, [&](const PointEntry& e) {
        return e.set == set && e.family == p.family && e.extra_name == extra_name &&
               e.extra_value.size() == p.extra.value.size() &&
               metric_hash::same_bytes(e.extra_value.data(), p.extra.value.data(), p.extra.value.size());
      });
      if (e) found = e->series;
    }
    if (!found) {
      found = &series_of(p.family, points.labels(p), d, cfg);
      if (internable)
        d.points.insert(hash, PointEntry{p.family, set, extra_name, std::string(p.extra.value), found});
    }
    Series& s = *found;
    const FamilyInfo& f = fams[static_cast<size_t>(p.family)];
    switch (f.kind) {
      case Kind::kCounter:
        s.value += p.value;
        break;
      case Kind::kMoney:
        s.money += p.money;
        break;
      case Kind::kHistogram: {
        if (s.buckets.empty()) s.buckets.assign(f.bounds.size(), 0);
        const auto it = std::lower_bound(f.bounds.begin(), f.bounds.end(), p.value);
        if (it != f.bounds.end()) ++s.buckets[static_cast<size_t>(it - f.bounds.begin())];
        s.sum += p.value;
        ++s.count;
        break;
      }
    }
  }
}

std::string MetricsRegistry::render() {
  // Merge the shards per family, sorted by label text for a stable exposition.
  std::array<std::map<std::string, Series>, kMetricFamilies> merged;
  shards_.for_each([&](Data& d) {
    for (size_t f = 0; f < kMetricFamilies; ++f) {
      for (const auto& [labels, s] : d.series[f]) {
        Series& m = merged[f][labels];
        m.money += s.money;
        m.value += s.value;
        if (m.buckets.size() < s.buckets.size()) m.buckets.resize(s.buckets.size(), 0);
        for (size_t i = 0; i < s.buckets.size(); ++i) m.buckets[i] += s.buckets[i];
        m.sum += s.sum;
        m.count += s.count;
      }
    }
  });
  std::string out;
  PromText w(out);
  for (size_t fi = 0; fi < kMetricFamilies; ++fi) {
    const FamilyInfo& f = families()[fi];
    w.family(f.name, f.kind == Kind::kHistogram ? "histogram" : "counter", f.help);
    for (const auto& [labels, s] : merged[fi]) {
      switch (f.kind) {
        case Kind::kCounter:
          w.sample(f.name, labels, s.value);
          break;
        case Kind::kMoney:
          w.sample(f.name, labels, s.money.to_usd_string());
          break;
        case Kind::kHistogram: {
          const std::string base(f.name);
          const std::string bucket = base + "_bucket";
          uint64_t cumulative = 0;
          std::string l;
          for (size_t i = 0; i <= f.bounds.size(); ++i) {
            cumulative += i < s.buckets.size() ? s.buckets[i] : 0;
            l = labels;
            if (!l.empty()) l += ',';
            append_label(l, "le",
                         i < f.bounds.size() ? prom_number(f.bounds[i]) : std::string("+Inf"));
            w.sample(bucket, l, static_cast<double>(i < f.bounds.size() ? cumulative : s.count));
          }
          w.sample(base + "_sum", labels, s.sum);
          w.sample(base + "_count", labels, static_cast<double>(s.count));
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace frugal::gateway
