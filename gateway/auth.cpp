#include "gateway/auth.h"

#include <algorithm>
#include <cctype>

#include "gateway/find_header.h"

namespace frugal::gateway {

namespace {

// ASCII only (header values and tokens; std::tolower's locale lookup per character
// cost a few hundred instructions per request).
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a == b) return true;
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  return std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "host:port" / "[v6]:port" / "host" -> host (brackets removed), port ("" if none).
std::pair<std::string_view, std::string_view> split_host(std::string_view h) {
  if (!h.empty() && h.front() == '[') {
    const size_t close = h.find(']');
    if (close == std::string_view::npos) return {h, {}};
    const std::string_view host = h.substr(1, close - 1);
    const std::string_view rest = h.substr(close + 1);
    return {host, rest.size() > 1 && rest.front() == ':' ? rest.substr(1) : std::string_view{}};
  }
  const size_t colon = h.rfind(':');
  if (colon == std::string_view::npos || h.find(':') != colon) return {h, {}};
  return {h.substr(0, colon), h.substr(colon + 1)};
}

}  // namespace

bool is_loopback(const asio::ip::address& a) {
  if (a.is_loopback()) return true;
  if (a.is_v6()) {
    const auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).is_loopback();
  }
  return false;
}

OriginVerdict check_origin(const Request& req, const config::GatewayConfig& cfg) {
  const auto it = find_header(req, bhttp::field::origin);
  if (it == req.end()) return OriginVerdict::kNone;
  const std::string_view origin = trim(it->value());
  for (const auto& allowed : cfg.cors_allowed_origins)
    if (allowed == "*" || iequals(allowed, origin)) return OriginVerdict::kAllowed;
  return OriginVerdict::kRefused;
}

void add_cors_headers(const Request& req, RequestContext& ctx) {
  const auto it = find_header(req, bhttp::field::origin);
  if (it == req.end()) return;
  ctx.headers.emplace_back("Access-Control-Allow-Origin", std::string(trim(it->value())));
  ctx.headers.emplace_back("Vary", "Origin");
  ctx.headers.emplace_back("Access-Control-Expose-Headers",
                           "x-request-id, x-frugal-cost-usd, x-frugal-savings-usd, x-frugal-model, retry-after");
}

void add_preflight_headers(const Request& req, RequestContext& ctx) {
  ctx.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  const auto h = req.find(bhttp::field::access_control_request_headers);
  ctx.headers.emplace_back("Access-Control-Allow-Headers",
                           h != req.end() ? std::string(h->value())
                                          : std::string("authorization, x-api-key, content-type, anthropic-version"));
  ctx.headers.emplace_back("Access-Control-Max-Age", "600");
}

std::optional<Error> content_type_error(const Request& req) {
  // The body has been read whole: a content-length above 0 left it non-empty.
  const bool has_body = !req.body().empty() || req.chunked();
  if (!has_body) return std::nullopt;
  const auto it = find_header(req, bhttp::field::content_type);
  std::string_view ct = it == req.end() ? std::string_view{} : std::string_view(it->value());
  ct = trim(ct.substr(0, ct.find(';')));
  if (iequals(ct, "application/json")) return std::nullopt;
  Error e = make_error(ErrorKind::kInvalidRequest,
                       "Request bodies must be JSON sent with 'Content-Type: application/json'" +
                           std::string(ct.empty() ? " (none was given)." : "; got '" + std::string(ct) + "'."),
                       "", "unsupported_media_type");
  e.status = 415;
  return e;
}

bool admin_host_allowed(const Request& req, const config::GatewayConfig& cfg, const tcp::endpoint& self) {
  const auto it = req.find(bhttp::field::host);
  if (it == req.end()) return true;
  const std::string_view value = trim(it->value());
  auto [host, port] = split_host(value);
  if (!port.empty() && port != std::to_string(self.port())) return false;
  for (const auto& a : cfg.admin.allowed_hosts) {
    auto [ah, ap] = split_host(a);
    if (iequals(ah, host) && (ap.empty() || ap == port)) return true;
  }
  if (iequals(host, "localhost")) return true;
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(std::string(host), ec);
  if (ec) return false;  // a name: only the configured ones (DNS rebinding)
  return is_loopback(addr) || addr == self.address();
}

bool admin_authorized(ClientSocket& stream, const Request& req, const config::GatewayConfig& cfg) {
  const std::string& token = cfg.admin.token.empty() ? cfg.admin_token : cfg.admin.token;
  if (!token.empty()) {
    const auto it = req.find(bhttp::field::authorization);
    std::string_view v = it == req.end() ? std::string_view{} : std::string_view(it->value());
    if (v.size() < 7 || !iequals(v.substr(0, 7), "Bearer ")) return false;
    return constant_time_equal(trim(v.substr(7)), token);
  }
  // A proxy on the same host makes every client look local: its forwarding headers
  // say otherwise.
  if (req.find("forwarded") != req.end() || req.find("x-forwarded-for") != req.end() ||
      req.find("x-real-ip") != req.end())
    return false;
  boost::system::error_code ec;
  const auto peer = stream.remote_endpoint(ec);
  return !ec && is_loopback(peer.address());
}

std::string_view presented_key(const Request& req) {
  if (auto it = find_header(req, bhttp::field::authorization); it != req.end()) {
    std::string_view v = trim(it->value());
    if (v.size() >= 7 && iequals(v.substr(0, 7), "Bearer ")) return trim(v.substr(7));
    return {};
  }
  if (auto x = find_header(req, "x-api-key"); x != req.end()) return trim(x->value());
  return {};
}

bool auth_required(const config::GatewayConfig& cfg, const KeyStore& keys) {
  switch (cfg.auth) {
    case config::AuthMode::kOff: return false;
    case config::AuthMode::kRequired: return true;
    case config::AuthMode::kAuto: return keys.size() > 0;
  }
  return true;
}

Result<std::shared_ptr<const KeyEntry>> authenticate(const Request& req, const KeyStore& keys, int64_t now_us) {
  const std::string_view key = presented_key(req);
  if (key.empty())
    return make_error(ErrorKind::kAuthentication,
                      "Missing API key: send a frugal virtual key as 'Authorization: Bearer <key>' or "
                      "'x-api-key: <key>'.",
                      "", "missing_api_key");
  const KeyStore::Lookup l = keys.find_secret(key, now_us);
  switch (l.state) {
    case KeyState::kValid: return l.entry;
    case KeyState::kExpired:
      return make_error(ErrorKind::kAuthentication, "The API key '" + l.entry->rec.name + "' has expired.", "",
                        "expired_api_key");
    case KeyState::kRevoked:
      return make_error(ErrorKind::kAuthentication, "The API key '" + l.entry->rec.name + "' has been revoked.", "",
                        "revoked_api_key");
    case KeyState::kUnknown: break;
  }
  return make_error(ErrorKind::kAuthentication, "Incorrect API key provided.", "", "invalid_api_key");
}

Result<void> check_listener_safety(const config::GatewayConfig& cfg, size_t keys, std::string& warning) {
  std::vector<std::string> exposed;
  for (const auto& l : cfg.server.listen) {
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(l.host, ec);
    if (ec || !is_loopback(addr)) exposed.push_back(l.host + ":" + std::to_string(l.port));
  }
  if (exposed.empty()) return {};
  std::string where;
  for (const auto& e : exposed) where += (where.empty() ? "" : ", ") + e;
  if (cfg.auth == config::AuthMode::kOff) {
    warning = "auth: off on " + where +
              ": anyone who can reach it spends the providers' keys (see docs/security.md)";
    return {};
  }
  if (cfg.auth == config::AuthMode::kAuto && keys == 0)
    return make_error(ErrorKind::kInvalidRequest,
                      "refusing to listen on " + where +
                          " without virtual keys: anyone who could reach it would spend the providers' keys. "
                          "Create a key (frugal keys create --name NAME --data-dir " + cfg.data_dir +
                          "), listen on 127.0.0.1, or write 'auth: off' in the config to allow it (docs/security.md).");
  return {};
}

}  // namespace frugal::gateway
