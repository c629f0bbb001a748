#include "backends/dialect/errors.h"

#include <simdjson.h>

#include "core/json.h"
#include "core/sse_writer.h"
#include "backends/dialect/detail.h"

namespace frugal {
namespace {

constexpr size_t kMaxEchoedBody = 512;  // an HTML error page must not flood the client

void write_error_object_openai(JsonWriter& w, const Error& e) {
  w.begin_object();
  w.key("message").value(e.message);
  w.key("type").value(e.openai_type());
  w.key("param");
  if (e.param.empty()) w.null(); else w.value(e.param);
  w.key("code");
  if (e.code.empty()) w.null(); else w.value(e.code);
  w.end_object();
}

ErrorKind kind_for_anthropic_type(std::string_view t, ErrorKind fallback) {
  if (t == "invalid_request_error") return ErrorKind::kInvalidRequest;
  if (t == "authentication_error") return ErrorKind::kAuthentication;
  if (t == "permission_error") return ErrorKind::kPermission;
  if (t == "not_found_error") return ErrorKind::kNotFound;
  if (t == "request_too_large") return ErrorKind::kTooLarge;
  if (t == "rate_limit_error") return ErrorKind::kRateLimited;
  if (t == "overloaded_error") return ErrorKind::kUnavailable;
  if (t == "timeout_error") return ErrorKind::kTimeout;
  if (t == "api_error") return ErrorKind::kUpstream;
  return fallback;
}

ErrorKind kind_for_openai_type(std::string_view t, ErrorKind fallback) {
  if (t == "invalid_request_error") return ErrorKind::kInvalidRequest;
  if (t == "authentication_error") return ErrorKind::kAuthentication;
  if (t == "permission_error") return ErrorKind::kPermission;
  if (t == "not_found_error") return ErrorKind::kNotFound;
  if (t == "rate_limit_error" || t == "insufficient_quota") return ErrorKind::kRateLimited;
  if (t == "server_error" || t == "api_error") return ErrorKind::kUpstream;
  return fallback;
}

// What of a body that is not the expected JSON may be shown to a client: short plain
// text (a proxy's "upstream connect error"), never a page of markup or binary bytes.
std::string echoable_text(std::string_view body) {
  while (!body.empty() && (body.front() == ' ' || body.front() == '\n' || body.front() == '\r' || body.front() == '\t'))
    body.remove_prefix(1);
  if (body.empty()) return {};
  if (body.front() == '<') return "(an HTML or XML page, not shown)";
  body = body.substr(0, kMaxEchoedBody);
  for (unsigned char c : body)
    if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f) return "(a binary body, not shown)";
  return std::string(body);
}

Error fallback_error(int http_status, std::string_view body) {
  Error e;
  e.kind = http_status ? error_kind_for_status(http_status) : ErrorKind::kUpstream;
  e.status = http_status;
  const std::string text = echoable_text(body);
  e.message = text.empty() ? "upstream returned HTTP " + std::to_string(http_status)
                           : "upstream returned HTTP " + std::to_string(http_status) + ": " + text;
  return e;
}

}  // namespace

ErrorKind error_kind_for_status(int s) {
  switch (s) {
    case 400: case 422: return ErrorKind::kInvalidRequest;
    case 401: return ErrorKind::kAuthentication;
    case 403: return ErrorKind::kPermission;
    case 404: return ErrorKind::kNotFound;
    case 405: return ErrorKind::kMethodNotAllowed;
    case 413: return ErrorKind::kTooLarge;
    case 429: return ErrorKind::kRateLimited;
    case 503: case 529: return ErrorKind::kUnavailable;
    case 504: return ErrorKind::kTimeout;
    default: break;
  }
  if (s >= 400 && s < 500) return ErrorKind::kInvalidRequest;
  return ErrorKind::kUpstream;
}

std::string render_anthropic_error(const Error& e) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("type").value("error").key("error").begin_object();
  w.key("type").value(e.anthropic_type()).key("message").value(e.message);
  w.end_object().end_object();
  return out;
}

std::string render_openai_error(const Error& e) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("error");
  write_error_object_openai(w, e);
  w.end_object();
  return out;
}

std::string render_anthropic_error_event(const Error& e) {
  std::string out;
  append_sse_event(out, "error", render_anthropic_error(e));
  return out;
}

std::string render_openai_error_event(const Error& e) {
  std::string out;
  append_sse_event(out, render_openai_error(e));
  return out;
}

Error error_from_anthropic_body(int http_status, std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root, err;
  if (parser.parse(body.data(), body.size()).get(root) || root["error"].get(err) || !err.is_object())
    return fallback_error(http_status, body);
  const std::string_view type = dialect_detail::str_or(err, "type");
  const std::string_view message = dialect_detail::str_or(err, "message");
  Error e;
  e.kind = kind_for_anthropic_type(
      type, http_status ? error_kind_for_status(http_status) : ErrorKind::kUpstream);
  e.status = http_status;
  e.message = message.empty() ? std::string(type) : std::string(message);
  return e;
}

Error error_from_openai_body(int http_status, std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root, err;
  if (parser.parse(body.data(), body.size()).get(root) || root["error"].get(err))
    return fallback_error(http_status, body);
  Error e;
  e.status = http_status;
  const ErrorKind by_status = http_status ? error_kind_for_status(http_status) : ErrorKind::kUpstream;
  std::string_view s;
  if (err.is_string()) {  // some OpenAI-compatible servers send {"error":"text"}
    e.kind = by_status;
    e.message = std::string(err.get_string().value_unsafe());
    return e;
  }
  if (!err.is_object()) return fallback_error(http_status, body);
  const std::string_view type = dialect_detail::str_or(err, "type");
  // The status is the more reliable signal when present: OpenAI-compatible servers
  // disagree on type strings, but not on HTTP semantics.
  e.kind = http_status ? by_status : kind_for_openai_type(type, ErrorKind::kUpstream);
  if (!err["message"].get_string().get(s)) e.message = std::string(s);
  if (!err["param"].get_string().get(s)) e.param = std::string(s);
  if (!err["code"].get_string().get(s)) e.code = std::string(s);
  if (e.message.empty()) e.message = type.empty() ? "upstream error" : std::string(type);
  return e;
}

}  // namespace frugal
