#include "gateway/otlp/metrics.h"

#include <algorithm>
#include <array>

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

std::string series_key(const Attributes& attrs) {
  std::string k;
  for (const Attribute& a : attrs) {
    k += a.key;
    k += '=';
    if (const auto* s = std::get_if<std::string>(&a.value)) k += *s;
    else if (const auto* i = std::get_if<int64_t>(&a.value)) k += std::to_string(*i);
    else if (const auto* b = std::get_if<bool>(&a.value)) k += *b ? "true" : "false";
    else if (const auto* d = std::get_if<double>(&a.value)) k += std::to_string(*d);
    k += '\x1f';
  }
  return k;
}

void token_observations(const RequestTrace& t, const TierAttempt& a, std::vector<Observation>& out) {
  const Usage& u = a.usage;
  if (!u.reported && u.input_tokens == 0 && u.output_tokens == 0) return;
  Attributes base;
  base.push_back({"gen_ai.operation.name", std::string(t.operation_name())});
  if (!a.provider.empty()) base.push_back({"gen_ai.provider.name", a.provider});
  const std::string& upstream = a.upstream_model.empty() ? a.model : a.upstream_model;
  base.push_back({"gen_ai.request.model", upstream});
  base.push_back({"frugal.route", t.route});
  const auto add = [&](const char* type, int64_t n, bool always) {
    if (n <= 0 && !always) return;
    Observation o{Instrument::kTokenUsage, base, static_cast<double>(n), {}};
    o.attributes.push_back({"gen_ai.token.type", std::string(type)});
    out.push_back(std::move(o));
  };
  add("input", u.input_tokens, true);
  add("output", u.output_tokens, true);
  add("cache_read", u.cached_input_tokens, false);
  add("cache_write", u.cache_write_5m_tokens + u.cache_write_1h_tokens, false);
}

}  // namespace

std::vector<Observation> metric_observations(const RequestTrace& t) {
  std::vector<Observation> out;
  for (const TierAttempt& a : t.tiers) token_observations(t, a, out);

  const bool hit = t.answered_from_cache();
  const std::string err = error_type(t);
  const std::string& response_model = hit ? t.cache.model : t.answer_upstream_model;
  {
    Attributes attrs;
    attrs.push_back({"gen_ai.operation.name", std::string(t.operation_name())});
    if (!hit && !t.answer_provider.empty()) attrs.push_back({"gen_ai.provider.name", t.answer_provider});
    if (!response_model.empty()) attrs.push_back({"gen_ai.response.model", response_model});
    attrs.push_back({"frugal.route", t.route});
    if (!err.empty()) attrs.push_back({"error.type", err});
    if (t.mono_end_us >= t.mono_start_us)
      out.push_back({Instrument::kOperationDuration, attrs, static_cast<double>(t.mono_end_us - t.mono_start_us) / 1e6, {}});
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
      out.push_back({Instrument::kTimeToFirstToken, std::move(attrs), static_cast<double>(first - t.mono_start_us) / 1e6, {}});
  }
  if (router::has_ledger_row(t)) {
    Attributes attrs;
    attrs.push_back({"frugal.request_type", t.request_type});
    attrs.push_back({"frugal.route", t.route});
    // The ledger's answer model: the route's name of the answering model, "(cache)" for a hit.
    const std::string model = hit ? "(cache)" : t.answer_model;
    if (!model.empty()) attrs.push_back({"gen_ai.response.model", model});
    if (!t.team.empty()) attrs.push_back({"frugal.team", t.team});
    const Money cost = t.cost();
    const Money baseline = t.booked_baseline();
    out.push_back({Instrument::kCost, attrs, 0, cost});
    out.push_back({Instrument::kBaseline, attrs, 0, baseline});
    out.push_back({Instrument::kSavings, std::move(attrs), 0, baseline - cost});
  }
  Attributes req;
  req.push_back({"frugal.request_type", t.request_type});
  req.push_back({"frugal.route", t.route});
  req.push_back({"frugal.cache", std::string(cache_name(t.cache.outcome))});
  req.push_back({"http.response.status_code", static_cast<int64_t>(t.status)});
  out.push_back({Instrument::kRequests, std::move(req), 1, {}});
  return out;
}

MetricsAggregator::MetricsAggregator(int64_t start_unix_ns, size_t max_series)
    : start_unix_ns_(start_unix_ns), max_series_(max_series) {}

void MetricsAggregator::add(const RequestTrace& t) { add(metric_observations(t)); }

void MetricsAggregator::add(const std::vector<Observation>& obs) {
  std::lock_guard lock(mu_);
  for (const Observation& o : obs) {
    const size_t i = static_cast<size_t>(o.instrument);
    const InstrumentInfo& info = instruments()[i];
    auto& map = series_[i];
    std::string key = series_key(o.attributes);
    auto it = map.find(key);
    if (it == map.end()) {
      Attributes attrs = o.attributes;
      if (map.size() >= max_series_) {
        attrs = {{"otel.metric.overflow", true}};
        key = series_key(attrs);
        it = map.find(key);
      }
      if (it == map.end()) {
        Series s;
        s.attributes = std::move(attrs);
        if (info.histogram) s.buckets.assign(info.bounds.size() + 1, 0);
        it = map.emplace(std::move(key), std::move(s)).first;
      }
    }
    Series& s = it->second;
    if (info.histogram) {
      const size_t b = static_cast<size_t>(std::lower_bound(info.bounds.begin(), info.bounds.end(), o.value) -
                                           info.bounds.begin());
      ++s.buckets[b];
      s.min = s.count == 0 ? o.value : std::min(s.min, o.value);
      s.max = s.count == 0 ? o.value : std::max(s.max, o.value);
    }
    ++s.count;
    s.sum += o.value;
    s.money += o.money;
  }
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
      for (const auto& [key, s] : series_[i]) {
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
