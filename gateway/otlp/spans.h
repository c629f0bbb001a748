#pragma once
// The spans of one finished request: a pure function of its record
// (router/request_trace.h), so what a collector sees is what the ledger and the
// response headers say. docs/observability.md ("OTLP") lists every name and attribute.
//
//   chat {requested model}        SERVER, the request; a child of the caller's span
//   ├─ cache lookup               INTERNAL, when the exact cache was consulted
//   ├─ chat {upstream model}      CLIENT, one per cascade tier tried; each upstream
//   │                             attempt (retry, fallback) is an event on it
//   └─ verify {model}             CLIENT, a verifier call scoring the tier before it
#include <vector>

#include "gateway/otlp/span.h"
#include "router/request_trace.h"

namespace frugal::otlp {

// The pinned semantic-conventions version (also the instrumentation scope's schema URL).
inline constexpr const char* kSemconvVersion = "1.40.0";
inline constexpr const char* kSchemaUrl = "https://opentelemetry.io/schemas/1.40.0";

// The spans borrow strings from `t` (span.h): they are valid while `t` lives.
std::vector<Span> spans(const router::RequestTrace& t);
std::vector<Span> spans(const router::RequestTrace&& t) = delete;  // would dangle
// The same into `out` (replacing what it holds), reusing its spans' allocations.
void spans(const router::RequestTrace& t, std::vector<Span>& out);
// How many spans spans(t) returns, without building them.
size_t span_count(const router::RequestTrace& t);

// The cache lookup's span id, derived from the request's (spans are a pure function
// of the trace, so it is not drawn at random).
uint64_t cache_span_id(uint64_t request_span_id);

// Wall-clock nanoseconds of a monotonic microsecond instant of the request.
int64_t unix_ns(const router::RequestTrace& t, int64_t mono_us);

// error.type of a finished request: "" when it succeeded, else the HTTP status it got
// ("502") or how the exchange ended when that says more (upstream_broke, shutdown,
// client_gone).
std::string error_type(const router::RequestTrace& t);

}  // namespace frugal::otlp
