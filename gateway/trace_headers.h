#pragma once
// The x-frugal-* response headers and a stream's trailers: pure functions of the
// request's trace (router/request_trace.h), evaluated when the response head (or the
// terminating chunk) is written, so they say what the trace knows at that moment.
//
//   x-frugal-request-type, x-frugal-route   once classified
//   retry-after                             a budget denial, until the period resets
//   x-frugal-budget-warning                 a soft budget limit passed
//   x-frugal-cache                          hit | miss | bypass, once looked up
//   x-frugal-provider, x-frugal-model       where the answer comes from (a hit: the
//                                           stored answer's model, no provider)
//   x-frugal-attempts                       upstream attempts, when more than one
//   x-frugal-tier                           the answering tier, 1-based
//   x-frugal-cost-usd                       cost so far (exact decimal)
//   x-frugal-cost-final                     false while a live answer is still running
//   x-frugal-savings-usd                    baseline − cost, once the cost is final
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "router/request_trace.h"

namespace frugal::gateway {

using HeaderList = std::vector<std::pair<std::string_view, std::string>>;

// Appends the trace's headers to `out` (names are string literals).
void append_response_headers(const router::RequestTrace& t, HeaderList& out);
HeaderList response_headers(const router::RequestTrace& t);
// The final cost figures for a stream's terminating chunk (announced by its head's
// `Trailer:` line); empty when the request has no cost record.
std::vector<std::pair<std::string, std::string>> trailers(const router::RequestTrace& t);

}  // namespace frugal::gateway
