#pragma once
// RequestTrace: the one record of a request. Every stage of the exchange appends what it
// decided or saw (gateway/chat_exchange.h: classification, budget, cache, each cascade
// tier, the answer's end); every output is a pure function of it:
//   response_headers(trace)  x-frugal-* headers (gateway/trace_headers.h)
//   trailers(trace)          the final cost figures of a stream
//   ledger_record(trace)     the ledger row (below)
// so a fact is decided once and every output agrees. Plain data: owned by the
// request's exchange, written only on its I/O thread.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dialect.h"
#include "core/money.h"
#include "core/usage.h"
#include "router/ledger_record.h"

namespace frugal::router {

// How the response to the client ended.
enum class ExchangeEnd : uint8_t {
  kComplete,       // the whole answer reached the client
  kUpstreamError,  // the upstream (or gateway) answered with an error, relayed as such
  kUpstreamBroke,  // the answer started and then broke (cut stream, missing terminator)
  kClientGone,     // the client disconnected or stopped reading
  kShutdown,       // cut by the gateway's shutdown after the grace period
};
const char* exchange_end_name(ExchangeEnd e);

// One upstream attempt of a dispatch (a retry or a fallback target is another).
struct AttemptRecord {
  std::string provider;
  std::string model;
  int status = 0;          // HTTP status, 0 if none
  std::string error;       // transport error or timeout
  int64_t latency_us = 0;  // until headers or failure
};

// One tier of the cascade as it was tried, or a verifier call scoring one (kVerifier).
struct TierAttempt {
  std::string model;           // the tier's model as the route names it
  std::string provider;        // the provider that answered ("" when none did)
  std::string upstream_model;  // the model name that provider was asked for
  std::vector<AttemptRecord> transport;  // every upstream attempt: retries, fallbacks
  TierStatus status = TierStatus::kError;
  std::string reason;
  std::optional<double> score;
  Usage usage;
  Money cost;
  // Why the answer ended, per choice (OpenAI's finish_reason: stop, length, tool_calls,
  // ...); empty when unknown. A buffered tier's: choice 0 only (what scoring reads).
  std::vector<std::string> finish_reasons;
  policies::PriceSource price = policies::PriceSource::kNone;  // who priced `cost`
  // Monotonic microseconds (mono_us); 0: not reached.
  int64_t started_us = 0;     // dispatched
  int64_t first_byte_us = 0;  // first answer byte (a plain answer: its headers)
  int64_t last_byte_us = 0;   // answer complete, failed or abandoned
  // The tier's span (gateway/otlp/spans.h); the upstream request names it in its
  // traceparent. 0: none.
  uint64_t span_id = 0;
};

struct BudgetDecision {
  bool checked = false;
  bool allowed = true;
  bool soft_exceeded = false;
  std::string message;        // why denied, or the soft limit passed
  int64_t retry_after_s = 0;  // denied: when the exhausted period resets
};

// Rate limits (rpm, tpm, concurrent streams) of the request's key and team.
struct LimitDecision {
  bool allowed = true;
  std::string message;        // which limit refused
  int64_t retry_after_s = 0;  // refused: until the limit has room again
};

struct CacheTrace {
  CacheOutcome outcome = CacheOutcome::kNone;
  bool follower = false;  // a hit served by following another request's live stream
  std::string model;      // a hit: the model whose stored answer it is
  Usage saved_usage;      // a hit: the usage of the stored answer (what the hit saved)
  int64_t wait_us = 0;    // waiting on the disk tier or another request's answer
  // Monotonic microseconds around the lookup; 0: not looked up.
  int64_t started_us = 0;
  int64_t ended_us = 0;
};

struct RequestTrace {
  // --- who and what ---
  std::string request_id;
  std::string trace_id;  // W3C trace id: 32 lowercase hex digits
  // The caller's span (16 lowercase hex digits) when a valid traceparent was continued.
  std::string parent_span_id;
  bool sampled = true;    // the caller's sampled flag (true without a traceparent)
  uint64_t span_id = 0;   // the request's own span (never 0 once the exchange exists)
  int64_t wall_start_us = 0;  // the request's arrival, µs since the Unix epoch
  int64_t mono_start_us = 0;  // the same instant on the monotonic clock
  Dialect dialect = Dialect::kOpenAi;
  std::string requested_model;
  bool client_stream = false;
  bool embeddings = false;  // POST /v1/embeddings (GenAI operation "embeddings", not "chat")
  // The virtual key's name when auth is on; else a stable hash of the API key sent
  // ("" without one). Never the key itself.
  std::string key_id;
  std::string team;

  // --- decisions ---
  bool classified = false;  // request_type and route are decided
  std::string request_type = "default";
  std::string route = "passthrough";
  bool routed = false;  // a policy route (false: the requested model, uncascaded)
  BudgetDecision budget;
  LimitDecision limit;
  CacheTrace cache;

  // --- the cascade ---
  bool dispatched = false;         // the answer sources were tried
  // In order, each verifier call after the tier it scored; a live tier is here from its
  // dispatch on (its cost, usage and verdict filled when the answer ends).
  std::vector<TierAttempt> tiers;
  std::string pricing_error;       // a model without a price (its cost counted as 0)
  // The version of the built-in price catalogue the request's price table falls back to
  // (on the ledger row when the catalogue priced a tier or the baseline).
  std::string catalogue_version;
  // What the route's output shaping changed in the request (router/output_shaping.h).
  ShapingRecord shaping;

  // --- the answer ---
  int answer_tier = -1;       // 0-based position of the answering tier in the route
  bool answer_live = false;   // streamed from the upstream as it arrives (cost final at the end)
  std::string answer_model;   // the route's name of the model that answered
  std::string answer_provider;
  std::string answer_upstream_model;
  Usage answer_usage;         // the usage the baseline is computed on
  bool baseline_known = false;
  Money baseline;             // what the route's reference model would have charged
  policies::PriceSource baseline_price = policies::PriceSource::kNone;  // who priced `baseline`

  // --- the end ---
  bool finished = false;
  ExchangeEnd end = ExchangeEnd::kComplete;
  int status = 200;  // the HTTP status the client got (499: the client went away first)
  int64_t mono_end_us = 0;  // when the exchange finished (0: not yet)
  int64_t overhead_us = 0;  // frugal's own time until then (x-frugal-overhead-us)

  Money cost() const;  // every tier and verifier call tried
  // The baseline that counts: 0 until an answer made it known.
  Money booked_baseline() const { return baseline_known ? baseline : Money{}; }
  Money savings() const { return booked_baseline() - cost(); }
  // Some tier (or verifier call) or the baseline used tokens of a model without a price:
  // cost() (or the baseline) is a lower bound, shown as "unknown".
  bool price_unknown() const;
  // A tier (or verifier call) used tokens of a model without a price: cost() is a lower bound.
  bool cost_unknown() const;
  // A tier or the baseline was priced by the built-in catalogue.
  bool catalogue_priced() const;
  // Upstream attempts over every tier and verifier call (retries and fallbacks included).
  size_t transport_attempts() const;
  bool answered_from_cache() const { return cache.outcome == CacheOutcome::kHit; }
  // The attempt of the tier that answered (verifier calls skipped); nullptr when none did.
  const TierAttempt* answer_attempt() const;
  // The OTel GenAI operation name: "embeddings" or "chat".
  const char* operation_name() const { return embeddings ? "embeddings" : "chat"; }
};

// The trace id for a request: the one in a valid W3C `traceparent` header (continuing the
// caller's trace), else derived from the request id's hex digits, else fresh.
std::string trace_id_for(std::string_view traceparent, std::string_view request_id);

// A valid W3C `traceparent` (version 00 or a later one's first four fields).
struct TraceParent {
  std::string trace_id;   // 32 lowercase hex digits, not all zero
  std::string parent_id;  // 16 lowercase hex digits, not all zero
  bool sampled = false;
};
std::optional<TraceParent> parse_traceparent(std::string_view header);
// A fresh random span id (never 0).
uint64_t new_span_id();
// 16 lowercase hex digits.
std::string span_id_hex(uint64_t id);
// "00-<trace id>-<span id>-<01|00>": the traceparent an upstream request carries.
std::string traceparent_value(std::string_view trace_id, uint64_t span_id, bool sampled);

// Whether the request gets a ledger row: it reached an answer source (the cache or the
// upstreams). Requests refused before that (bad input, budget, unknown model) do not.
bool has_ledger_row(const RequestTrace& t);
// The ledger row of a finished request.
LedgerRecord ledger_record(const RequestTrace& t);

}  // namespace frugal::router
