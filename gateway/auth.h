#pragma once
// Who may call what (docs/security.md). Checks made by the session before a request is
// routed, on both listeners:
//   - a browser's cross-origin request (an Origin header not in cors.allowed_origins)
//     is refused on every path, and a CORS preflight (OPTIONS) is answered for the
//     allowed ones only;
//   - a request with a body must say Content-Type: application/json (415 otherwise):
//     a page cannot send one cross-origin without a preflight;
//   - the API plane needs a virtual key when auth is on (401 otherwise);
//   - the admin plane (/admin/*, /v1/frugal/*, /metrics on its own listener) checks
//     Host against its own address (DNS rebinding) and needs the admin token (compared
//     in constant time) or, without one configured, a loopback client that did not
//     come through a proxy.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "gateway/keys.h"
#include "gateway/worker.h"

namespace frugal::gateway {

// Loopback, including IPv4-mapped IPv6 (::ffff:127.0.0.1).
bool is_loopback(const asio::ip::address& a);

// The Origin header's verdict. kNone: no Origin (not a browser's cross-origin call).
enum class OriginVerdict { kNone, kAllowed, kRefused };
OriginVerdict check_origin(const Request& req, const config::GatewayConfig& cfg);
// Headers for an allowed origin's response (Access-Control-Allow-Origin, Vary).
void add_cors_headers(const Request& req, RequestContext& ctx);
// An OPTIONS preflight's headers (methods, request headers, max age) for an allowed origin.
void add_preflight_headers(const Request& req, RequestContext& ctx);

// 415 when the request carries a body that is not declared application/json.
std::optional<Error> content_type_error(const Request& req);

// Admin plane: whether Host names this listener (`self`), localhost, a loopback
// literal or one of admin.allowed_hosts. A request without Host passes (not a browser).
bool admin_host_allowed(const Request& req, const config::GatewayConfig& cfg, const tcp::endpoint& self);
// Admin plane: the token (when configured), else a loopback peer without proxy headers.
bool admin_authorized(ClientSocket& stream, const Request& req, const config::GatewayConfig& cfg);

// The API key a client sent: `Authorization: Bearer K` (OpenAI) or `x-api-key: K`
// (Anthropic); "" without one.
std::string_view presented_key(const Request& req);

// Whether API requests need a virtual key now (auth: required; or unset while the data
// directory holds keys).
bool auth_required(const config::GatewayConfig& cfg, const KeyStore& keys);

// The key of an API request when auth is required: a valid entry, or a 401 naming why
// (missing, unknown, expired, revoked) that never echoes the key.
Result<std::shared_ptr<const KeyEntry>> authenticate(const Request& req, const KeyStore& keys, int64_t now_us);

// Start-up check: an error when a listener is not on loopback and the API would be
// open (no keys, auth not explicitly off); a warning line when auth is off there.
Result<void> check_listener_safety(const config::GatewayConfig& cfg, size_t keys, std::string& warning);

}  // namespace frugal::gateway
