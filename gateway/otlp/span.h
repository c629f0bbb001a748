#pragma once
// The OTLP data frugal exports, as plain structs: what spans(trace) and the metrics
// aggregator produce and encode.h turns into protobuf bytes.
//
// Strings a span or an observation takes from the request record are borrowed
// (std::string_view, std::span): what spans(trace) and metric_observations(trace) return is
// valid while that trace lives (the exporter keeps the queued trace until its spans are
// encoded); the metrics aggregator and the resource own theirs (std::string).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace frugal::otlp {

// A string value is owned (std::string) or borrowed (std::string_view); a string array
// likewise (std::vector<std::string> or std::span<const std::string>). Both encode alike.
using AttrValue = std::variant<std::string, bool, int64_t, double, std::vector<std::string>, std::string_view,
                               std::span<const std::string>>;

struct Attribute {
  std::string_view key;  // a string literal: every key is one (no allocation per attribute)
  AttrValue value;
};
using Attributes = std::vector<Attribute>;

// The attribute `key`, or null.
const AttrValue* find_attribute(const Attributes& attrs, std::string_view key);
// A string value's text, owned or borrowed; nullopt for other types.
std::optional<std::string_view> string_value(const AttrValue& v);
// A string array's elements, owned or borrowed; nullopt for other types.
std::optional<std::span<const std::string>> strings_value(const AttrValue& v);
// Same type and same value (an owned and a borrowed string with the same text are equal).
bool same_value(const AttrValue& a, const AttrValue& b);

// Span.SpanKind and Status.StatusCode of the OTLP trace proto.
enum class SpanKind : uint8_t { kInternal = 1, kServer = 2, kClient = 3 };
enum class StatusCode : uint8_t { kUnset = 0, kOk = 1, kError = 2 };

struct SpanEvent {
  int64_t time_unix_ns = 0;
  std::string_view name;  // a literal
  Attributes attributes;
};

struct Span {
  std::string_view trace_id;    // 32 lowercase hex digits (the trace's)
  uint64_t span_id = 0;
  uint64_t parent_span_id = 0;  // 0: a root span
  bool parent_remote = false;   // the parent is the caller's span (from its traceparent)
  bool sampled = true;
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  int64_t start_unix_ns = 0;
  int64_t end_unix_ns = 0;
  Attributes attributes;
  std::vector<SpanEvent> events;
  StatusCode status = StatusCode::kUnset;
  std::string status_message;
};

}  // namespace frugal::otlp
