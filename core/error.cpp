#include "core/error.h"

namespace frugal {

int Error::http_status() const {
  if (status != 0) return status;
  switch (kind) {
    case ErrorKind::kInvalidRequest: return 400;
    case ErrorKind::kAuthentication: return 401;
    case ErrorKind::kPermission: return 403;
    case ErrorKind::kNotFound: return 404;
    case ErrorKind::kMethodNotAllowed: return 405;
    case ErrorKind::kTooLarge: return 413;
    case ErrorKind::kRateLimited: return 429;
    case ErrorKind::kUpstream: return 502;
    case ErrorKind::kTimeout: return 504;
    case ErrorKind::kUnavailable: return 503;
    case ErrorKind::kCancelled: return 499;
    case ErrorKind::kInternal: return 500;
  }
  return 500;
}

const char* Error::openai_type() const {
  switch (kind) {
    case ErrorKind::kInvalidRequest:
    case ErrorKind::kNotFound:
    case ErrorKind::kMethodNotAllowed:
    case ErrorKind::kTooLarge: return "invalid_request_error";
    case ErrorKind::kAuthentication: return "authentication_error";
    case ErrorKind::kPermission: return "permission_error";
    case ErrorKind::kRateLimited: return "rate_limit_error";
    case ErrorKind::kUpstream:
    case ErrorKind::kTimeout:
    case ErrorKind::kUnavailable: return "upstream_error";
    case ErrorKind::kCancelled:
    case ErrorKind::kInternal: return "server_error";
  }
  return "server_error";
}

const char* Error::anthropic_type() const {
  switch (kind) {
    case ErrorKind::kInvalidRequest:
    case ErrorKind::kMethodNotAllowed: return "invalid_request_error";
    case ErrorKind::kTooLarge: return "request_too_large";
    case ErrorKind::kNotFound: return "not_found_error";
    case ErrorKind::kAuthentication: return "authentication_error";
    case ErrorKind::kPermission: return "permission_error";
    case ErrorKind::kRateLimited: return "rate_limit_error";
    case ErrorKind::kUnavailable: return "overloaded_error";
    case ErrorKind::kUpstream:
    case ErrorKind::kTimeout:
    case ErrorKind::kCancelled:
    case ErrorKind::kInternal: return "api_error";
  }
  return "api_error";
}

Error make_error(ErrorKind kind, std::string message, std::string param, std::string code) {
  Error e;
  e.kind = kind;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

}  // namespace frugal
