#include "gateway/otlp/encode.h"

#include <bit>
#include <span>

#include "gateway/otlp/proto.h"
#include "gateway/otlp/spans.h"

#ifndef FRUGAL_OTLP_VERSION
#define FRUGAL_OTLP_VERSION "0"
#endif

namespace frugal::otlp {

namespace {

// Field numbers of opentelemetry/proto/{common,resource,trace,metrics}/v1/*.proto.
namespace common {
constexpr uint32_t kKvKey = 1, kKvValue = 2;
constexpr uint32_t kAnyString = 1, kAnyBool = 2, kAnyInt = 3, kAnyDouble = 4, kAnyArray = 5;
constexpr uint32_t kArrayValues = 1;
constexpr uint32_t kScopeName = 1, kScopeVersion = 2;
constexpr uint32_t kResourceAttributes = 1;
}  // namespace common
namespace trace {
constexpr uint32_t kRequestResourceSpans = 1;
constexpr uint32_t kResourceSpansResource = 1, kResourceSpansScopeSpans = 2;
constexpr uint32_t kScopeSpansScope = 1, kScopeSpansSpans = 2, kScopeSpansSchemaUrl = 3;
constexpr uint32_t kTraceId = 1, kSpanId = 2, kParentSpanId = 4, kName = 5, kKind = 6, kStart = 7, kEnd = 8,
                   kAttributes = 9, kEvents = 11, kStatus = 15, kFlags = 16;
constexpr uint32_t kEventTime = 1, kEventName = 2, kEventAttributes = 3;
constexpr uint32_t kStatusMessage = 2, kStatusCode = 3;
}  // namespace trace
namespace metrics {
constexpr uint32_t kRequestResourceMetrics = 1;
constexpr uint32_t kResourceMetricsResource = 1, kResourceMetricsScopeMetrics = 2;
constexpr uint32_t kScopeMetricsScope = 1, kScopeMetricsMetrics = 2, kScopeMetricsSchemaUrl = 3;
constexpr uint32_t kMetricName = 1, kMetricDescription = 2, kMetricUnit = 3, kMetricSum = 7, kMetricHistogram = 9;
constexpr uint32_t kSumPoints = 1, kSumTemporality = 2, kSumMonotonic = 3;
constexpr uint32_t kHistogramPoints = 1, kHistogramTemporality = 2;
constexpr uint32_t kNumStart = 2, kNumTime = 3, kNumDouble = 4, kNumInt = 6, kNumAttributes = 7;
constexpr uint32_t kHistStart = 2, kHistTime = 3, kHistCount = 4, kHistSum = 5, kHistBuckets = 6, kHistBounds = 7,
                   kHistAttributes = 9, kHistMin = 11, kHistMax = 12;
constexpr uint64_t kCumulative = 2;
}  // namespace metrics

// The AnyValue message of `v`: its body's size, then its fields (lengths known up front:
// no placeholder, nothing moved).
size_t string_any_size(std::string_view s) { return 1 + varint_size(s.size()) + s.size(); }

size_t array_any_size(std::span<const std::string> a) {
  size_t n = 0;
  for (const std::string& s : a) {
    const size_t e = string_any_size(s);
    n += 1 + varint_size(e) + e;
  }
  return 1 + varint_size(n) + n;
}

size_t any_size(const AttrValue& v) {
  switch (v.index()) {
    case 0: return string_any_size(*std::get_if<0>(&v));
    case 1: return 2;
    case 2: return 1 + varint_size(static_cast<uint64_t>(*std::get_if<2>(&v)));
    case 3: return 9;
    case 4: return array_any_size(*std::get_if<4>(&v));
    case 5: return string_any_size(*std::get_if<5>(&v));
    case 6: return array_any_size(*std::get_if<6>(&v));
  }
  return 0;
}

// Unchecked, through a cursor: the caller reserved room for the AnyValue's body
// (any_size bytes).
char* put_string_any(char* p, std::string_view s) {
  *p++ = static_cast<char>(tag_of(common::kAnyString, WireType::kLen));
  p = ProtoWriter::put_varint(p, s.size());
  return ProtoWriter::put_bytes(p, s);
}

char* put_array_any(char* p, std::span<const std::string> a) {
  size_t n = 0;
  for (const std::string& s : a) {
    const size_t e = string_any_size(s);
    n += 1 + varint_size(e) + e;
  }
  *p++ = static_cast<char>(tag_of(common::kAnyArray, WireType::kLen));
  p = ProtoWriter::put_varint(p, n);
  for (const std::string& s : a) {
    *p++ = static_cast<char>(tag_of(common::kArrayValues, WireType::kLen));
    p = ProtoWriter::put_varint(p, string_any_size(s));
    p = put_string_any(p, s);
  }
  return p;
}

char* put_any(char* p, const AttrValue& v) {
  switch (v.index()) {
    case 0: return put_string_any(p, *std::get_if<0>(&v));
    case 1:
      *p++ = static_cast<char>(tag_of(common::kAnyBool, WireType::kVarint));
      *p++ = *std::get_if<1>(&v) ? 1 : 0;
      return p;
    case 2:
      *p++ = static_cast<char>(tag_of(common::kAnyInt, WireType::kVarint));
      return ProtoWriter::put_varint(p, static_cast<uint64_t>(*std::get_if<2>(&v)));
    case 3:
      *p++ = static_cast<char>(tag_of(common::kAnyDouble, WireType::kFixed64));
      return ProtoWriter::put_le(p, std::bit_cast<uint64_t>(*std::get_if<3>(&v)), 8);
    case 4: return put_array_any(p, *std::get_if<4>(&v));
    case 5: return put_string_any(p, *std::get_if<5>(&v));
    case 6: return put_array_any(p, *std::get_if<6>(&v));
  }
  return p;
}

// Each attribute as a KeyValue in `field`, written straight through: its sizes are
// computed first. The common types (strings, integers, doubles) take one dispatch each.
void attributes(ProtoWriter& w, uint32_t field, const Attributes& attrs) {
  const uint64_t field_tag = tag_of(field, WireType::kLen);
  for (const Attribute& a : attrs) {
    // The KeyValue's head up to its value's AnyValue body of `any` bytes; room for it all.
    const auto head = [&](size_t any) {
      const size_t kv = 1 + varint_size(a.key.size()) + a.key.size() + 1 + varint_size(any) + any;
      w.reserve(kv + 11);
      char* p = ProtoWriter::put_varint(w.cursor(), field_tag);
      p = ProtoWriter::put_varint(p, kv);
      *p++ = static_cast<char>(tag_of(common::kKvKey, WireType::kLen));
      p = ProtoWriter::put_varint(p, a.key.size());
      p = ProtoWriter::put_bytes(p, a.key);
      *p++ = static_cast<char>(tag_of(common::kKvValue, WireType::kLen));
      return ProtoWriter::put_varint(p, any);
    };
    std::string_view str;
    switch (a.value.index()) {
      case 0: str = *std::get_if<0>(&a.value); break;
      case 5: str = *std::get_if<5>(&a.value); break;
      case 2: {
        const auto v = static_cast<uint64_t>(*std::get_if<2>(&a.value));
        char* p = head(1 + varint_size(v));
        *p++ = static_cast<char>(tag_of(common::kAnyInt, WireType::kVarint));
        w.advance(ProtoWriter::put_varint(p, v));
        continue;
      }
      case 3: {
        char* p = head(9);
        *p++ = static_cast<char>(tag_of(common::kAnyDouble, WireType::kFixed64));
        w.advance(ProtoWriter::put_le(p, std::bit_cast<uint64_t>(*std::get_if<3>(&a.value)), 8));
        continue;
      }
      default: w.advance(put_any(head(any_size(a.value)), a.value)); continue;
    }
    w.advance(put_string_any(head(string_any_size(str)), str));
  }
}

std::string hex_bytes(std::string_view hex) {
  std::string out(hex.size() / 2, '\0');
  const auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(nib(hex[2 * i]) << 4 | nib(hex[2 * i + 1]));
  return out;
}

// A span id's 8 bytes, big-endian.
void id_field(ProtoWriter& w, uint32_t field, uint64_t id) {
  w.reserve(10);
  w.put_varint(tag_of(field, WireType::kLen));
  w.put_varint(8);
  w.put_le(__builtin_bswap64(id), 8);
}

void scope(ProtoWriter& w) {
  w.bytes_field(common::kScopeName, "frugal");
  w.bytes_field(common::kScopeVersion, FRUGAL_OTLP_VERSION);
}

// A 32-digit trace id's 16 bytes, without an allocation per span.
struct TraceIdBytes {
  char b[16];
  explicit TraceIdBytes(std::string_view hex32) {
    const auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    for (size_t i = 0; i < sizeof b; ++i) b[i] = static_cast<char>(nib(hex32[2 * i]) << 4 | nib(hex32[2 * i + 1]));
  }
  std::string_view view() const { return {b, sizeof b}; }
};

// `trace_id`: the span's trace id, as bytes (a trace's spans come one after the other:
// TraceEncoder converts each trace id once).
void span(ProtoWriter& w, const Span& s, std::string_view trace_id) {
  w.bytes_field(trace::kTraceId, trace_id);
  id_field(w, trace::kSpanId, s.span_id);
  if (s.parent_span_id != 0) id_field(w, trace::kParentSpanId, s.parent_span_id);
  w.bytes_field(trace::kName, s.name);
  w.uint64_field(trace::kKind, static_cast<uint64_t>(s.kind));
  w.fixed64_field(trace::kStart, static_cast<uint64_t>(s.start_unix_ns));
  w.fixed64_field(trace::kEnd, static_cast<uint64_t>(s.end_unix_ns));
  attributes(w, trace::kAttributes, s.attributes);
  for (const SpanEvent& e : s.events)
    w.wide_message(trace::kEvents, [&](ProtoWriter& ev) {
      ev.fixed64_field(trace::kEventTime, static_cast<uint64_t>(e.time_unix_ns));
      ev.bytes_field(trace::kEventName, e.name);
      attributes(ev, trace::kEventAttributes, e.attributes);
    });
  if (s.status != StatusCode::kUnset)
    w.message(trace::kStatus, [&](ProtoWriter& st) {
      if (!s.status_message.empty()) st.bytes_field(trace::kStatusMessage, s.status_message);
      st.uint64_field(trace::kStatusCode, static_cast<uint64_t>(s.status));
    });
  // W3C trace flags in the low byte; bit 8: whether the parent is remote is known, bit 9: it is.
  uint32_t flags = (s.sampled ? 1u : 0u) | 0x100u;
  if (s.parent_remote) flags |= 0x200u;
  w.fixed32_field(trace::kFlags, flags);
}

void number_point(ProtoWriter& w, const MetricData& m, const NumberPoint& p) {
  w.fixed64_field(metrics::kNumStart, static_cast<uint64_t>(m.start_unix_ns));
  w.fixed64_field(metrics::kNumTime, static_cast<uint64_t>(m.time_unix_ns));
  if (p.is_int) w.sfixed64_field(metrics::kNumInt, p.as_int);
  else w.double_field(metrics::kNumDouble, p.as_double);
  attributes(w, metrics::kNumAttributes, p.attributes);
}

void histogram_point(ProtoWriter& w, const MetricData& m, const HistogramPoint& p) {
  w.fixed64_field(metrics::kHistStart, static_cast<uint64_t>(m.start_unix_ns));
  w.fixed64_field(metrics::kHistTime, static_cast<uint64_t>(m.time_unix_ns));
  w.fixed64_field(metrics::kHistCount, p.count);
  w.double_field(metrics::kHistSum, p.sum);
  w.packed_fixed64(metrics::kHistBuckets, p.bucket_counts);
  w.packed_double(metrics::kHistBounds, m.bounds);
  attributes(w, metrics::kHistAttributes, p.attributes);
  if (p.count > 0) {
    w.double_field(metrics::kHistMin, p.min);
    w.double_field(metrics::kHistMax, p.max);
  }
}

void metric(ProtoWriter& w, const MetricData& m) {
  w.bytes_field(metrics::kMetricName, m.name);
  if (!m.description.empty()) w.bytes_field(metrics::kMetricDescription, m.description);
  if (!m.unit.empty()) w.bytes_field(metrics::kMetricUnit, m.unit);
  if (m.histogram) {
    w.wide_message(metrics::kMetricHistogram, [&](ProtoWriter& h) {
      for (const HistogramPoint& p : m.histograms)
        h.wide_message(metrics::kHistogramPoints, [&](ProtoWriter& dp) { histogram_point(dp, m, p); });
      h.uint64_field(metrics::kHistogramTemporality, metrics::kCumulative);
    });
  } else {
    w.wide_message(metrics::kMetricSum, [&](ProtoWriter& s) {
      for (const NumberPoint& p : m.numbers)
        s.message(metrics::kSumPoints, [&](ProtoWriter& dp) { number_point(dp, m, p); });
      s.uint64_field(metrics::kSumTemporality, metrics::kCumulative);
      if (m.monotonic) s.bool_field(metrics::kSumMonotonic, true);
    });
  }
}

}  // namespace

Attributes resource_attributes(const std::string& service_name) {
  return {{"service.name", service_name},
          {"service.version", std::string(FRUGAL_OTLP_VERSION)},
          {"telemetry.sdk.name", std::string("frugal")},
          {"telemetry.sdk.language", std::string("cpp")},
          {"telemetry.sdk.version", std::string(FRUGAL_OTLP_VERSION)}};
}

TraceEncoder::TraceEncoder(std::string& room, const Attributes& resource) : w_(room, ProtoWriter::kOverwrite) {
  resource_spans_ = w_.open_wide(trace::kRequestResourceSpans);
  w_.message(trace::kResourceSpansResource,
             [&](ProtoWriter& r) { attributes(r, common::kResourceAttributes, resource); });
  scope_spans_ = w_.open_wide(trace::kResourceSpansScopeSpans);
  w_.message(trace::kScopeSpansScope, scope);
}

void TraceEncoder::add(const Span& s) {
  if (s.trace_id != trace_hex_) {
    trace_hex_.assign(s.trace_id);
    if (s.trace_id.size() == 32) {
      const TraceIdBytes b(s.trace_id);
      trace_bytes_.assign(b.view());
    } else {
      trace_bytes_ = hex_bytes(s.trace_id);
    }
  }
  w_.wide_message(trace::kScopeSpansSpans, [&](ProtoWriter& sp) { span(sp, s, trace_bytes_); });
}

std::string_view TraceEncoder::finish() {
  w_.bytes_field(trace::kScopeSpansSchemaUrl, kSchemaUrl);
  w_.close_wide(scope_spans_);
  w_.close_wide(resource_spans_);
  return w_.written();
}

std::string encode_traces(const Attributes& resource, const std::vector<Span>& spans) {
  std::string out;
  TraceEncoder enc(out, resource);
  for (const Span& s : spans) enc.add(s);
  out.resize(enc.finish().size());
  return out;
}

std::string encode_metrics(const Attributes& resource, const std::vector<MetricData>& ms) {
  std::string out;
  ProtoWriter w(out);
  w.wide_message(metrics::kRequestResourceMetrics, [&](ProtoWriter& rm) {
    rm.message(metrics::kResourceMetricsResource,
               [&](ProtoWriter& r) { attributes(r, common::kResourceAttributes, resource); });
    rm.wide_message(metrics::kResourceMetricsScopeMetrics, [&](ProtoWriter& sm) {
      sm.message(metrics::kScopeMetricsScope, scope);
      for (const MetricData& m : ms)
        sm.wide_message(metrics::kScopeMetricsMetrics, [&](ProtoWriter& mw) { metric(mw, m); });
      sm.bytes_field(metrics::kScopeMetricsSchemaUrl, kSchemaUrl);
    });
  });
  w.finish();
  return out;
}

}  // namespace frugal::otlp
