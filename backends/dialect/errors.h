#pragma once
// Error bodies in both dialects: rendering our `Error` for a client, and reading an
// upstream's error body back into an `Error` so it can be re-rendered in the other
// dialect with its HTTP status and message intact.
#include <string>
#include <string_view>

#include "core/error.h"

namespace frugal {

// `{"type":"error","error":{"type":"invalid_request_error","message":"..."}}`
// (the body of a non-2xx /v1/messages response and the data of an `event: error`).
std::string render_anthropic_error(const Error& e);

// `{"error":{"message":"...","type":"...","param":null,"code":null}}`; param and code
// are null when empty, as OpenAI sends them.
std::string render_openai_error(const Error& e);

// SSE events carrying an error, ready to write to a client mid-stream:
//   Anthropic: "event: error\ndata: {...}\n\n"
//   OpenAI:    "data: {\"error\":{...}}\n\n" (what OpenAI sends; the SDKs raise on it)
std::string render_anthropic_error_event(const Error& e);
std::string render_openai_error_event(const Error& e);

// An upstream's non-2xx response (or an error object inside a stream) as an `Error`.
// `http_status` is kept in `Error::status` (0 when unknown, e.g. mid-stream; the kind
// is then derived from the error type). A body that is not the expected shape still
// yields an error: its text (truncated) becomes the message, kind from the status.
Error error_from_anthropic_body(int http_status, std::string_view body);
Error error_from_openai_body(int http_status, std::string_view body);

// ErrorKind for an HTTP status an upstream returned (400→kInvalidRequest, 429→kRateLimited, ...).
ErrorKind error_kind_for_status(int http_status);

}  // namespace frugal
