#pragma once
// Error and Result<T>: the request path returns errors, it never throws.
// An Error carries what a client-facing API needs to shape it (HTTP status, a type,
// an optional machine code and the offending parameter) so that every layer can
// produce one and the dialect codec in gateway/ renders it.
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace frugal {

enum class ErrorKind {
  kInvalidRequest,   // 400: malformed JSON, wrong types, missing fields
  kAuthentication,   // 401
  kPermission,       // 403
  kNotFound,         // 404: unknown model, unknown path
  kMethodNotAllowed, // 405
  kTooLarge,         // 413
  kRateLimited,      // 429: upstream rate limit or a hard budget
  kUpstream,         // 502: upstream failed, cut a stream, or returned garbage
  kTimeout,          // 504: connect / first-byte / total deadline
  kUnavailable,      // 503: no backend could take the request
  kInternal,         // 500: a bug
  kCancelled,        // the client went away; never rendered
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
  std::string param;  // the request field at fault, if any
  std::string code;   // machine-readable code, e.g. "model_not_found"
  int status = 0;     // HTTP status; 0 = derived from kind

  int http_status() const;
  // OpenAI's "type" strings: invalid_request_error, authentication_error, ...
  const char* openai_type() const;
  // Anthropic's "type" strings: invalid_request_error, authentication_error, ...
  const char* anthropic_type() const;
};

Error make_error(ErrorKind kind, std::string message, std::string param = {},
                 std::string code = {});

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                 // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}             // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { assert(!ok()); return std::get<1>(v_); }
  Error&& error() && { assert(!ok()); return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { assert(!ok_); return err_; }
  Error&& error() && { assert(!ok_); return std::move(err_); }

 private:
  Error err_;
  bool ok_ = true;
};

// Propagates an error from an expression returning Result<...>.
#define FRUGAL_TRY(expr)                                   \
  do {                                                     \
    auto frugal_try_r_ = (expr);                           \
    if (!frugal_try_r_.ok()) return std::move(frugal_try_r_).error(); \
  } while (0)

}  // namespace frugal
