#include "gateway/otlp/metrics.h"

#include <algorithm>
#include <array>
#include <bit>

#include "core/fast_hash.h"
#include "gateway/otlp/spans.h"
#include "gateway/otlp/usd.h"

namespace frugal::otlp {

namespace {

using router::RequestTrace;
using router::TierAttempt;
using router::TierStatus;

struct InstrumentInfo {
  const char* name;
  const char* description;
  const char* unit;
  bool histogram;
  bool monotonic;
  bool money;
  std::vector<double> bounds;
};

// Bucket boundaries as the GenAI semantic conventions advise.
const std::array<InstrumentInfo, kInstrumentCount>& instruments() {
  static const std::array<InstrumentInfo, kInstrumentCount> k = {{
      {"gen_ai.client.token.usage", "Tokens per upstream call, by token type", "{token}", true, true, false,
       {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}},
      {"gen_ai.client.operation.duration", "Duration of a chat request through frugal", "s", true, true, false,
       {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}},
      {"gen_ai.server.time_to_first_token", "Time from a streamed request's arrival to its answer's first token",
       "s", true, true, false,
       {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0}},
      {"frugal.cost.usd", "Cost of the requests: every tier and verifier call tried", "{USD}", false, true, true, {}},
      {"frugal.baseline.usd", "What the route's reference model would have charged", "{USD}", false, true, true, {}},
      {"frugal.savings.usd", "Baseline minus cost (negative when a cascade cost more)", "{USD}", false, false, true,
       {}},
      {"frugal.requests", "Finished chat requests", "{request}", false, true, false, {}},
  }};
  return k;
}

const char* cache_name(router::CacheOutcome o) {
  switch (o) {
    case router::CacheOutcome::kNone: return "none";
    case router::CacheOutcome::kHit: return "hit";
    case router::CacheOutcome::kMiss: return "miss";
    case router::CacheOutcome::kBypass: return "bypass";
  }
  return "none";
}

// A 64-bit hash of an attribute set (keys and values, in order).
struct Hasher {
  uint64_t h = 0x243f6a8885a308d3ull;
  void mix(uint64_t w) { h = fast_hash::mix(h, w); }
  void bytes(std::string_view s) { h = fast_hash::text(h, s); }
};

// The text of a string value (owned or borrowed), or null.
inline const std::string_view* as_view(const AttrValue& v, std::string_view& tmp) {
  if (const auto* s = std::get_if<std::string_view>(&v)) return s;
  if (const auto* s = std::get_if<std::string>(&v)) {
    tmp = *s;
    return &tmp;
  }
  return nullptr;
}

// A hash of an attribute set: each key's length (keys are literals; same_attributes
// compares them) and each value.
uint64_t attributes_hash(const Attributes& attrs) {
  Hasher hs;
  for (const Attribute& a : attrs) {
    hs.mix(a.key.size());
    std::string_view tmp;
    if (const std::string_view* s = as_view(a.value, tmp)) {
      hs.mix(1);
      hs.bytes(*s);
    } else if (const auto* i = std::get_if<int64_t>(&a.value)) {
      hs.mix(2);
      hs.mix(static_cast<uint64_t>(*i));
    } else if (const auto* b = std::get_if<bool>(&a.value)) {
      hs.mix(3);
      hs.mix(*b ? 1 : 0);
    } else if (const auto* d = std::get_if<double>(&a.value)) {
      hs.mix(4);
      hs.mix(std::bit_cast<uint64_t>(*d));
    } else if (const auto ss = strings_value(a.value)) {
      hs.mix(5);
      for (const std::string& x : *ss) hs.bytes(x);
    }
  }
  return hs.h;
}

// Equal attribute sets; `stored` is a series' (owned strings), `a` an observation's.
bool same_attributes(const Attributes& stored, const Attributes& a) {
  if (stored.size() != a.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string_view k1 = stored[i].key, k2 = a[i].key;
    if (k1.size() != k2.size() || (k1.data() != k2.data() && k1 != k2)) return false;  // mostly the same literal
    std::string_view t1, t2;
    const std::string_view* x = as_view(stored[i].value, t1);
    const std::string_view* y = as_view(a[i].value, t2);
    if (x || y) {
      if (!x || !y || *x != *y) return false;
    } else if (!same_value(stored[i].value, a[i].value)) {
      return false;
    }
  }
  return true;
}

// The attributes with every borrowed string copied: what a series keeps.
Attributes owned(const Attributes& attrs) {
  Attributes out;
  out.reserve(attrs.size());
  for (const Attribute& a : attrs) {
    if (const auto* s = std::get_if<std::string_view>(&a.value)) out.push_back({a.key, std::string(*s)});
    else if (const auto* v = std::get_if<std::span<const std::string>>(&a.value))
      out.push_back({a.key, std::vector<std::string>(v->begin(), v->end())});
    else out.push_back(a);
  }
  return out;
}

// Every observation of one finished request, in order, as
//   emit(instrument, attributes, value, money, same): `same` when the attributes are the
//   ones (the same object, unchanged) of the previous emit, so their hash can be kept.
// The attributes borrow strings from `t`, and live until emit returns.
template <class Emit>
void observe(const RequestTrace& t, Emit&& emit) {
  Attributes attrs;
  attrs.reserve(6);
  for (const TierAttempt& a : t.tiers) {
    const Usage& u = a.usage;
    if (!u.reported && u.input_tokens == 0 && u.output_tokens == 0) continue;
    attrs.clear();
    attrs.push_back({"gen_ai.operation.name", std::string_view(t.operation_name())});
    if (!a.provider.empty()) attrs.push_back({"gen_ai.provider.name", std::string_view(a.provider)});
    const std::string& upstream = a.upstream_model.empty() ? a.model : a.upstream_model;
    attrs.push_back({"gen_ai.request.model", std::string_view(upstream)});
    attrs.push_back({"frugal.route", std::string_view(t.route)});
    attrs.push_back({"gen_ai.token.type", std::string_view()});
    const auto add = [&](const char* type, int64_t n, bool always) {
      if (n <= 0 && !always) return;
      attrs.back().value = std::string_view(type);
      emit(Instrument::kTokenUsage, attrs, static_cast<double>(n), Money{}, false);
    };
    add("input", u.input_tokens, true);
    add("output", u.output_tokens, true);
    add("cache_read", u.cached_input_tokens, false);
    add("cache_write", u.cache_write_5m_tokens + u.cache_write_1h_tokens, false);
  }

  const bool hit = t.answered_from_cache();
  const std::string err = error_type(t);
  const std::string& response_model = hit ? t.cache.model : t.answer_upstream_model;
  {
    attrs.clear();
    attrs.push_back({"gen_ai.operation.name", std::string_view(t.operation_name())});
    if (!hit && !t.answer_provider.empty()) attrs.push_back({"gen_ai.provider.name", std::string_view(t.answer_provider)});
    if (!response_model.empty()) attrs.push_back({"gen_ai.response.model", std::string_view(response_model)});
    attrs.push_back({"frugal.route", std::string_view(t.route)});
    if (!err.empty()) attrs.push_back({"error.type", std::string_view(err)});
    bool same = false;
    if (t.mono_end_us >= t.mono_start_us) {
      emit(Instrument::kOperationDuration, attrs, static_cast<double>(t.mono_end_us - t.mono_start_us) / 1e6, Money{},
           false);
      same = true;
    }
    // The answer's first token was ready: a live tier's first byte, an accepted buffered
    // tier once it was complete, a hit once looked up.
    int64_t first = 0;
    if (hit) {
      first = t.cache.ended_us;
    } else if (t.answer_tier >= 0) {
      for (auto it = t.tiers.rbegin(); it != t.tiers.rend(); ++it) {
        if (it->status != TierStatus::kAccepted) continue;
        first = t.answer_live ? it->first_byte_us : it->last_byte_us;
        break;
      }
    }
    if (t.client_stream && first > t.mono_start_us && err.empty())
      emit(Instrument::kTimeToFirstToken, attrs, static_cast<double>(first - t.mono_start_us) / 1e6, Money{}, same);
  }
  if (router::has_ledger_row(t)) {
    attrs.clear();
    attrs.push_back({"frugal.request_type", std::string_view(t.request_type)});
    attrs.push_back({"frugal.route", std::string_view(t.route)});
    // The ledger's answer model: the route's name of the answering model, "(cache)" for a hit.
    const std::string_view model = hit ? std::string_view("(cache)") : std::string_view(t.answer_model);
    if (!model.empty()) attrs.push_back({"gen_ai.response.model", model});
    if (!t.team.empty()) attrs.push_back({"frugal.team", std::string_view(t.team)});
    const Money cost = t.cost();
    const Money baseline = t.booked_baseline();
    emit(Instrument::kCost, attrs, 0, cost, false);
    emit(Instrument::kBaseline, attrs, 0, baseline, true);
    emit(Instrument::kSavings, attrs, 0, baseline - cost, true);
  }
  attrs.clear();
  attrs.push_back({"frugal.request_type", std::string_view(t.request_type)});
  attrs.push_back({"frugal.route", std::string_view(t.route)});
  attrs.push_back({"frugal.cache", std::string_view(cache_name(t.cache.outcome))});
  attrs.push_back({"http.response.status_code", static_cast<int64_t>(t.status)});
  emit(Instrument::kRequests, attrs, 1, Money{}, false);
}

}  // namespace

std::vector<Observation> metric_observations(const RequestTrace& t) {
  std::vector<Observation> out;
  out.reserve(t.tiers.size() * 4 + 6);
  // error.type is the one string not in `t`: copied (owned) into the observations.
  observe(t, [&](Instrument i, const Attributes& attrs, double value, Money money, bool) {
    Observation& o = out.emplace_back(Observation{i, attrs, value, money});
    for (Attribute& a : o.attributes)
      if (a.key == "error.type") a.value = std::string(*string_value(a.value));
  });
  return out;
}

MetricsAggregator::MetricsAggregator(int64_t start_unix_ns, size_t max_series)
    : start_unix_ns_(start_unix_ns), max_series_(max_series) {}

void MetricsAggregator::add(const RequestTrace& t) {
  std::lock_guard lock(mu_);
  uint64_t h = 0;
  observe(t, [&](Instrument i, const Attributes& attrs, double value, const Money& money, bool same) {
    if (!same) h = attributes_hash(attrs);
    add_locked(i, attrs, h, value, money);
  });
}

void MetricsAggregator::add(const std::vector<Observation>& obs) {
  std::lock_guard lock(mu_);
  for (const Observation& o : obs) add_locked(o.instrument, o.attributes, attributes_hash(o.attributes), o.value, o.money);
}

void MetricsAggregator::add_locked(Instrument instrument, const Attributes& attributes, uint64_t h, double value,
                                   const Money& money) {
  const size_t i = static_cast<size_t>(instrument);
  const InstrumentInfo& info = instruments()[i];
  std::vector<Series>& series = series_[i];
  auto& index = index_[i];
  Series* found = nullptr;
  for (auto [it, end] = index.equal_range(h); it != end && !found; ++it)
    if (same_attributes(series[it->second].attributes, attributes)) found = &series[it->second];
  if (!found) {
    Attributes attrs;
    uint64_t key = h;
    if (series.size() >= max_series_) {
      attrs = {{"otel.metric.overflow", true}};
      key = attributes_hash(attrs);
      for (auto [it, end] = index.equal_range(key); it != end && !found; ++it)
        if (same_attributes(series[it->second].attributes, attrs)) found = &series[it->second];
    } else {
      attrs = owned(attributes);
    }
    if (!found) {
      Series s;
      s.attributes = std::move(attrs);
      if (info.histogram) s.buckets.assign(info.bounds.size() + 1, 0);
      index.emplace(key, static_cast<uint32_t>(series.size()));
      series.push_back(std::move(s));
      found = &series.back();
    }
  }
  Series& s = *found;
  if (info.histogram) {
    const size_t b =
        static_cast<size_t>(std::lower_bound(info.bounds.begin(), info.bounds.end(), value) - info.bounds.begin());
    ++s.buckets[b];
    s.min = s.count == 0 ? value : std::min(s.min, value);
    s.max = s.count == 0 ? value : std::max(s.max, value);
  }
  ++s.count;
  s.sum += value;
  s.money += money;
}

std::vector<MetricData> MetricsAggregator::collect(int64_t now_unix_ns, const ExporterCounters& self) const {
  std::vector<MetricData> out;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < kInstrumentCount; ++i) {
      if (series_[i].empty()) continue;
      const InstrumentInfo& info = instruments()[i];
      MetricData m;
      m.name = info.name;
      m.description = info.description;
      m.unit = info.unit;
      m.histogram = info.histogram;
      m.monotonic = info.monotonic;
      m.bounds = info.bounds;
      m.start_unix_ns = start_unix_ns_;
      m.time_unix_ns = now_unix_ns;
      for (const Series& s : series_[i]) {
        if (info.histogram) {
          m.histograms.push_back({s.attributes, s.count, s.sum, s.min, s.max, s.buckets});
        } else if (info.money) {
          m.numbers.push_back({s.attributes, false, 0, usd(s.money)});
        } else {
          m.numbers.push_back({s.attributes, true, static_cast<int64_t>(s.sum), 0});
        }
      }
      out.push_back(std::move(m));
    }
  }
  const auto counter = [&](const char* name, const char* description, uint64_t v) {
    MetricData m;
    m.name = name;
    m.description = description;
    m.unit = "{span}";
    m.start_unix_ns = start_unix_ns_;
    m.time_unix_ns = now_unix_ns;
    m.numbers.push_back({{}, true, static_cast<int64_t>(v), 0});
    out.push_back(std::move(m));
  };
  counter("frugal.otlp.spans.exported", "Spans the collector accepted", self.spans_exported);
  counter("frugal.otlp.spans.dropped", "Spans dropped: export queue full, collector down or refusing", self.spans_dropped);
  return out;
}

}  // namespace frugal::otlp
