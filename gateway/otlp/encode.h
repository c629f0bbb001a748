#pragma once
// OTLP/HTTP protobuf request bodies (opentelemetry-proto v1):
//   ExportTraceServiceRequest   → POST {endpoint}/v1/traces
//   ExportMetricsServiceRequest → POST {endpoint}/v1/metrics
// one resource (service.name, telemetry.sdk.*), one instrumentation scope ("frugal",
// with the pinned semantic-conventions schema URL).
#include <string>
#include <string_view>
#include <vector>

#include "gateway/otlp/metrics.h"
#include "gateway/otlp/proto.h"
#include "gateway/otlp/span.h"

namespace frugal::otlp {

// The resource of everything frugal exports.
Attributes resource_attributes(const std::string& service_name);

std::string encode_traces(const Attributes& resource, const std::vector<Span>& spans);

// encode_traces one span at a time, into room the caller keeps across requests: the
// request's header at construction, add() per span, finish() closes it and returns the
// body — the start of `room`, which keeps its size (grown as needed: no zero-filling
// again when it is reused).
class TraceEncoder {
 public:
  TraceEncoder(std::string& room, const Attributes& resource);
  void add(const Span& s);
  std::string_view finish();

 private:
  ProtoWriter w_;
  size_t resource_spans_ = 0, scope_spans_ = 0;
  std::string trace_hex_, trace_bytes_;  // the last span's trace id, and its bytes
};
std::string encode_metrics(const Attributes& resource, const std::vector<MetricData>& metrics);

}  // namespace frugal::otlp
