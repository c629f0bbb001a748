#pragma once
// frugal's own HTTP API next to the model APIs:
//   GET  /v1/frugal/costs?from=&to=&group_by=request_type,model,key[&format=table]
//        cost report over the ledger's hourly rollups (router/costs.h renders it)
//   GET  /v1/frugal/ledger?from=&to=&limit=   ledger rows, oldest first
//   GET  /v1/frugal/budgets                   budget windows, spend, soft/denied counts
//   POST /v1/frugal/feedback                  a label for a captured request (docs/replay.md)
//   POST /admin/reload                        reload the config and policy now
// Ledger reads and reloads run on the server's blocking pool, never on the I/O thread.
// Errors are OpenAI-shaped like the rest of the API.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "gateway/worker.h"

namespace frugal::gateway {

// Handles every path under /v1/frugal/ and /admin/ (404 for unknown ones).
asio::awaitable<bool> handle_frugal_api(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w);

// A time parameter in microseconds since the Unix epoch: Unix seconds ("1714521600"),
// an ISO 8601 UTC date or time ("2024-05-01", "2024-05-01T13:00:00Z", minutes and
// seconds optional), "now", or relative to now ("-24h", "-30m", "-7d").
Result<int64_t> parse_time_param(std::string_view value, std::string_view param, int64_t now_us);

// Decodes %XX and '+' in a query-string component.
std::string url_decode(std::string_view s);

}  // namespace frugal::gateway
