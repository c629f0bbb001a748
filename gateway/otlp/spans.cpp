#include "gateway/otlp/spans.h"

#include <algorithm>
#include <cstdlib>

#include "gateway/otlp/usd.h"

namespace frugal::otlp {

namespace {

using router::RequestTrace;
using router::TierAttempt;
using router::TierStatus;

uint64_t parse_hex64(std::string_view hex) {
  uint64_t v = 0;
  for (char c : hex) v = (v << 4) | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  return v;
}

const char* cache_outcome_name(router::CacheOutcome o) {
  switch (o) {
    case router::CacheOutcome::kNone: return "none";
    case router::CacheOutcome::kHit: return "hit";
    case router::CacheOutcome::kMiss: return "miss";
    case router::CacheOutcome::kBypass: return "bypass";
  }
  return "none";
}

const char* tier_status_name(TierStatus s) {
  switch (s) {
    case TierStatus::kAccepted: return "accepted";
    case TierStatus::kRejected: return "rejected";
    case TierStatus::kError: return "error";
    case TierStatus::kVerifier: return "verifier";
  }
  return "error";
}

struct Attrs {
  Attributes& a;
  // Each attribute is constructed in place (the vectors are reserved ahead).
  template <class T, class V>
  void put(const char* k, V&& v) {
    a.emplace_back(std::string_view(k), AttrValue(std::in_place_type<T>, std::forward<V>(v)));
  }
  // Borrowed: literals, or strings of the trace the span is built from.
  void str(const char* k, std::string_view v) { put<std::string_view>(k, v); }
  void str_if(const char* k, std::string_view v) {
    if (!v.empty()) str(k, v);
  }
  void owned(const char* k, std::string v) { put<std::string>(k, std::move(v)); }
  void i64(const char* k, int64_t v) { put<int64_t>(k, v); }
  void dbl(const char* k, double v) { put<double>(k, v); }
  void flag(const char* k, bool v) { put<bool>(k, v); }
  void finish_reasons(const std::vector<std::string>& v) {
    if (!v.empty()) put<std::span<const std::string>>("gen_ai.response.finish_reasons", std::span<const std::string>(v));
  }
  void usage(const Usage& u) {
    if (!u.reported && u.input_tokens == 0 && u.output_tokens == 0) return;
    i64("gen_ai.usage.input_tokens", u.input_tokens);
    i64("gen_ai.usage.output_tokens", u.output_tokens);
    i64("gen_ai.usage.cache_read.input_tokens", u.cached_input_tokens);
    const int64_t written = u.cache_write_5m_tokens + u.cache_write_1h_tokens;
    i64("gen_ai.usage.cache_write.input_tokens", written);
    i64("gen_ai.usage.cache_creation.input_tokens", written);  // the same, as semconv 1.40 names it
    if (u.reasoning_tokens > 0) i64("gen_ai.usage.reasoning.output_tokens", u.reasoning_tokens);
  }
};

// `s` = "{prefix} {rest}" (reusing its buffer).
void set_joined(std::string& s, std::string_view prefix, std::string_view rest) {
  s.reserve(prefix.size() + 1 + rest.size());
  s.assign(prefix);
  s += ' ';
  s.append(rest);
}

// error.type of one tier: the last upstream attempt's status, a timeout, a transport
// failure, or an answer that could not be used.
std::string tier_error_type(const TierAttempt& a) {
  if (!a.transport.empty()) {
    const router::AttemptRecord& last = a.transport.back();
    if (last.status >= 400) return std::to_string(last.status);
    if (!last.error.empty())
      return last.error.find("timed out") != std::string::npos || last.error.find("timeout") != std::string::npos
                 ? "timeout"
                 : "transport_error";
  }
  if (a.reason.find("timed out") != std::string::npos) return "timeout";
  return a.provider.empty() ? "no_target" : "invalid_answer";
}

void tier_span(const RequestTrace& t, const TierAttempt& a, int64_t tier_no, Span& s) {
  const bool verifier = a.status == TierStatus::kVerifier;
  const std::string& upstream = a.upstream_model.empty() ? a.model : a.upstream_model;
  s.trace_id = t.trace_id;
  s.span_id = a.span_id;
  s.parent_span_id = t.span_id;
  s.sampled = t.sampled;
  set_joined(s.name, verifier ? "verify" : t.operation_name(), upstream);
  s.kind = SpanKind::kClient;
  s.start_unix_ns = unix_ns(t, a.started_us);
  s.end_unix_ns = a.last_byte_us >= a.started_us ? unix_ns(t, a.last_byte_us) : s.start_unix_ns;
  s.attributes.reserve(24);
  Attrs at{s.attributes};
  at.str("gen_ai.operation.name", t.operation_name());
  at.str_if("gen_ai.provider.name", a.provider);
  at.str("gen_ai.request.model", upstream);
  const bool answered = !a.provider.empty() && a.status != TierStatus::kError;
  if (answered && !a.upstream_model.empty()) at.str("gen_ai.response.model", a.upstream_model);
  at.finish_reasons(a.finish_reasons);
  at.usage(a.usage);
  at.i64("frugal.tier", tier_no);
  at.str("frugal.tier.model", a.model);
  at.str("frugal.tier.status", tier_status_name(a.status));
  if (verifier) at.flag("frugal.verifier", true);
  at.str_if("frugal.tier.reason", a.reason);
  if (a.score) at.dbl("frugal.score", *a.score);
  at.dbl("frugal.cost_usd", usd(a.cost));
  if (a.price == policies::PriceSource::kUnknown) at.str("frugal.price", "unknown");  // cost_usd counts it as 0
  if (a.first_byte_us > a.started_us)
    at.dbl("frugal.time_to_first_byte_s", static_cast<double>(a.first_byte_us - a.started_us) / 1e6);
  // A failed verifier call is not an error of the tier: the rule rejects without it.
  const bool failed = a.status == TierStatus::kError || (verifier && !a.score);
  if (failed) {
    std::string type = tier_error_type(a);
    s.status = StatusCode::kError;
    s.status_message = a.reason.empty() ? type : a.reason;
    at.owned("error.type", std::move(type));
  }
  // Each upstream attempt ends at the tier's start plus the attempts before it.
  int64_t at_us = a.started_us;
  s.events.reserve(a.transport.size());
  for (const router::AttemptRecord& r : a.transport) {
    at_us += r.latency_us;
    SpanEvent& ev = s.events.emplace_back();
    ev.time_unix_ns = unix_ns(t, at_us);
    ev.name = "upstream attempt";
    ev.attributes.reserve(5);
    Attrs ea{ev.attributes};
    ea.str_if("gen_ai.provider.name", r.provider);
    ea.str_if("gen_ai.request.model", r.model);
    if (r.status > 0) ea.i64("http.response.status_code", r.status);
    ea.str_if("frugal.attempt.error", r.error);
    ea.dbl("frugal.attempt.duration_s", static_cast<double>(r.latency_us) / 1e6);
  }
}

}  // namespace

const AttrValue* find_attribute(const Attributes& attrs, std::string_view key) {
  for (const Attribute& a : attrs)
    if (a.key == key) return &a.value;
  return nullptr;
}

std::optional<std::string_view> string_value(const AttrValue& v) {
  if (const auto* s = std::get_if<std::string_view>(&v)) return *s;
  if (const auto* s = std::get_if<std::string>(&v)) return std::string_view(*s);
  return std::nullopt;
}

std::optional<std::span<const std::string>> strings_value(const AttrValue& v) {
  if (const auto* s = std::get_if<std::span<const std::string>>(&v)) return *s;
  if (const auto* s = std::get_if<std::vector<std::string>>(&v)) return std::span<const std::string>(*s);
  return std::nullopt;
}

bool same_value(const AttrValue& a, const AttrValue& b) {
  if (const auto s = string_value(a)) {
    const auto t = string_value(b);
    return t && *s == *t;
  }
  if (const auto s = strings_value(a)) {
    const auto t = strings_value(b);
    return t && std::equal(s->begin(), s->end(), t->begin(), t->end());
  }
  if (a.index() != b.index()) return false;
  if (const auto* x = std::get_if<bool>(&a)) return *x == *std::get_if<bool>(&b);
  if (const auto* x = std::get_if<int64_t>(&a)) return *x == *std::get_if<int64_t>(&b);
  if (const auto* x = std::get_if<double>(&a)) return *x == *std::get_if<double>(&b);
  return false;
}

uint64_t cache_span_id(uint64_t id) {
  // splitmix64's finalizer: a different, well-mixed id from the same seed.
  uint64_t z = id + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z == 0 || z == id ? id ^ 0x5bd1e995ull : z;
}

int64_t unix_ns(const RequestTrace& t, int64_t mono_us) {
  return (t.wall_start_us + (mono_us - t.mono_start_us)) * 1000;
}

std::string error_type(const RequestTrace& t) {
  switch (t.end) {
    case router::ExchangeEnd::kUpstreamBroke: return "upstream_broke";
    case router::ExchangeEnd::kShutdown: return "shutdown";
    case router::ExchangeEnd::kClientGone: return "client_gone";
    case router::ExchangeEnd::kComplete:
    case router::ExchangeEnd::kUpstreamError: break;
  }
  return t.status >= 400 ? std::to_string(t.status) : std::string();
}

size_t span_count(const RequestTrace& t) {
  return 1 + (t.cache.started_us > 0 && t.cache.outcome != router::CacheOutcome::kNone ? 1 : 0) + t.tiers.size();
}

std::vector<Span> spans(const RequestTrace& t) {
  std::vector<Span> out;
  spans(t, out);
  return out;
}

namespace {

// `s` as a new Span, keeping what it allocated (name, attributes, events).
void reset(Span& s) {
  s.trace_id = {};
  s.span_id = s.parent_span_id = 0;
  s.parent_remote = false;
  s.sampled = true;
  s.name.clear();
  s.kind = SpanKind::kInternal;
  s.start_unix_ns = s.end_unix_ns = 0;
  s.attributes.clear();
  s.events.clear();
  s.status = StatusCode::kUnset;
  s.status_message.clear();
}

}  // namespace

void spans(const RequestTrace& t, std::vector<Span>& out) {
  const size_t n = span_count(t);
  if (out.size() > n) out.resize(n);
  out.reserve(n);
  size_t used = 0;
  // The next span: a reused one, or a new one (a reference valid until the next call).
  const auto next = [&]() -> Span& {
    if (used < out.size()) {
      reset(out[used]);
      return out[used++];
    }
    ++used;
    return out.emplace_back();
  };
  Span& root = next();
  root.trace_id = t.trace_id;
  root.span_id = t.span_id;
  if (t.parent_span_id.size() == 16) {
    root.parent_span_id = parse_hex64(t.parent_span_id);
    root.parent_remote = true;
  }
  root.sampled = t.sampled;
  if (t.requested_model.empty()) root.name.assign(t.operation_name());
  else set_joined(root.name, t.operation_name(), t.requested_model);
  root.kind = SpanKind::kServer;
  root.start_unix_ns = t.wall_start_us * 1000;
  root.end_unix_ns = t.mono_end_us >= t.mono_start_us ? unix_ns(t, t.mono_end_us) : root.start_unix_ns;
  {
    root.attributes.reserve(32);
    Attrs at{root.attributes};
    const bool hit = t.answered_from_cache();
    at.str("gen_ai.operation.name", t.operation_name());
    if (!hit) at.str_if("gen_ai.provider.name", t.answer_provider);
    at.str_if("gen_ai.request.model", t.requested_model);
    at.str_if("gen_ai.response.model", hit ? t.cache.model : t.answer_upstream_model);
    if (const TierAttempt* a = hit ? nullptr : t.answer_attempt()) at.finish_reasons(a->finish_reasons);
    at.usage(t.answer_usage);
    const std::string err = error_type(t);
    if (!err.empty()) at.owned("error.type", err);
    at.str("frugal.request_type", t.request_type);
    at.str("frugal.route", t.route);
    if (!hit && t.answer_tier >= 0) at.i64("frugal.tier", t.answer_tier + 1);
    at.str("frugal.cache", cache_outcome_name(t.cache.outcome));
    const Money cost = t.cost();
    const Money baseline = t.booked_baseline();
    at.dbl("frugal.cost_usd", usd(cost));
    at.dbl("frugal.baseline_usd", usd(baseline));
    at.dbl("frugal.savings_usd", usd(baseline - cost));
    if (t.price_unknown()) at.str("frugal.price", "unknown");
    at.str("frugal.request_id", t.request_id);
    at.str("frugal.dialect", dialect_name(t.dialect));
    at.str("frugal.end", router::exchange_end_name(t.end));
    at.str_if("frugal.team", t.team);
    at.str_if("frugal.key_id", t.key_id);
    at.i64("http.response.status_code", t.status);
    if (t.status >= 500 || t.end == router::ExchangeEnd::kUpstreamBroke || t.end == router::ExchangeEnd::kShutdown) {
      root.status = StatusCode::kError;
      root.status_message = err;
    }
  }

  if (t.cache.started_us > 0 && t.cache.outcome != router::CacheOutcome::kNone) {
    Span& c = next();
    c.trace_id = t.trace_id;
    c.span_id = cache_span_id(t.span_id);
    c.parent_span_id = t.span_id;
    c.sampled = t.sampled;
    c.name.assign("cache lookup");
    c.kind = SpanKind::kInternal;
    c.start_unix_ns = unix_ns(t, t.cache.started_us);
    c.end_unix_ns = t.cache.ended_us >= t.cache.started_us ? unix_ns(t, t.cache.ended_us) : c.start_unix_ns;
    c.attributes.reserve(4);
    Attrs at{c.attributes};
    at.str("frugal.cache", cache_outcome_name(t.cache.outcome));
    if (t.cache.follower) at.flag("frugal.cache.follower", true);
    at.str_if("gen_ai.response.model", t.cache.model);
    if (t.cache.wait_us > 0) at.dbl("frugal.cache.wait_s", static_cast<double>(t.cache.wait_us) / 1e6);
  }

  int64_t tier_no = 0;
  for (const TierAttempt& a : t.tiers) {
    if (a.status != TierStatus::kVerifier) ++tier_no;
    tier_span(t, a, tier_no, next());
  }
}

}  // namespace frugal::otlp
