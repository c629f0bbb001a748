#pragma once
// The OTLP data frugal exports, as plain structs: what spans(trace) and the metrics
// aggregator produce and encode.h turns into protobuf bytes.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace frugal::otlp {

using AttrValue = std::variant<std::string, bool, int64_t, double, std::vector<std::string>>;

struct Attribute {
  std::string_view key;  // a string literal: every key is one (no allocation per attribute)
  AttrValue value;
  bool operator==(const Attribute&) const = default;
};
using Attributes = std::vector<Attribute>;

// The attribute `key`, or null.
const AttrValue* find_attribute(const Attributes& attrs, std::string_view key);

// Span.SpanKind and Status.StatusCode of the OTLP trace proto.
enum class SpanKind : uint8_t { kInternal = 1, kServer = 2, kClient = 3 };
enum class StatusCode : uint8_t { kUnset = 0, kOk = 1, kError = 2 };

struct SpanEvent {
  int64_t time_unix_ns = 0;
  std::string name;
  Attributes attributes;
};

struct Span {
  std::string trace_id;         // 32 lowercase hex digits
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
