#pragma once
// Captured traffic as replay-log lines (docs/replay.md), built from a finished request's
// trace: what every tier it tried cost and scored, the answer, and — for a request the
// route shadows — the reference model's answer, which labels the answer by agreement.
// Pure functions; the gateway hands the lines to its CaptureWriter.
#include <optional>
#include <string>
#include <string_view>

#include "config/policy_config.h"
#include "core/chat.h"
#include "core/money.h"
#include "core/usage.h"
#include "router/request_trace.h"

namespace frugal::gateway {

// The reference model's answer to a shadowed request.
struct ShadowOutcome {
  std::string model;
  std::string answer;  // its text, not yet redacted
  Usage usage;
  Money cost;
  int64_t latency_ms = 0;
};

// Text as a capture line keeps it: itself (none), "hash128:<32 hex>" (hash: equal texts
// stay equal, the text is not kept; a non-cryptographic digest, so short texts can be
// guessed by trying them), or "" (drop).
std::string redact_text(std::string_view text, config::CaptureRedact redact);

// The request as a capture line keeps it ("" for drop: the line then carries only its
// request type): the model, the messages (role and redacted text) and response_format.
std::string capture_request_json(const ChatRequest& req, config::CaptureRedact redact);

// Whether two answers agree: equal after trimming, collapsing whitespace and ignoring
// ASCII case. Shadow evaluation's label.
bool answers_agree(std::string_view a, std::string_view b);

// One replay-log line (no newline).
std::string capture_line(const router::RequestTrace& t, config::CaptureRedact redact, std::string_view request_json,
                         std::string_view answer_text, const ShadowOutcome* shadow);

// A label for a captured request (POST /v1/frugal/feedback): the log reader applies it
// to the model that answered the request with this id.
std::string feedback_line(std::string_view request_id, std::optional<bool> correct, std::optional<double> score);

}  // namespace frugal::gateway
