#pragma once
// OTLP/HTTP protobuf request bodies (opentelemetry-proto v1):
//   ExportTraceServiceRequest   → POST {endpoint}/v1/traces
//   ExportMetricsServiceRequest → POST {endpoint}/v1/metrics
// one resource (service.name, telemetry.sdk.*), one instrumentation scope ("frugal",
// with the pinned semantic-conventions schema URL).
#include <string>
#include <vector>

#include "gateway/otlp/metrics.h"
#include "gateway/otlp/span.h"

namespace frugal::otlp {

// The resource of everything frugal exports.
Attributes resource_attributes(const std::string& service_name);

std::string encode_traces(const Attributes& resource, const std::vector<Span>& spans);
std::string encode_metrics(const Attributes& resource, const std::vector<MetricData>& metrics);

}  // namespace frugal::otlp
