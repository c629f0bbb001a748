#pragma once
// The cascade executor: runs a route's tiers in order through the backends and returns
// the one answer the client gets, plus a ledger entry for every tier it tried.
//
//   tier i (not last, stream: cascade)  dispatched with log-probs when its rule needs
//                                       them, fully buffered (a stream's SSE too),
//                                       parsed, verified, scored: accepted → its bytes
//                                       are returned as a ReplayCall (log-probs removed
//                                       when the client did not ask, SSE when the client
//                                       streams); rejected → next tier
//   the last tier                       returned live: the caller streams it as it
//                                       arrives and completes its ledger entry at the end
//   stream: first_tier                  every tier is live (no scoring); a tier that
//                                       fails before its response starts escalates
//
// An error (transport failure, timeout, an error status, a cut stream, an unparseable
// answer) rejects a tier that is not the last; the last tier's error goes to the client.
// A tier that was tried always costs what it billed (priced from its reported usage).
// A verifier (a named cheap model asked a yes/no question, P(yes) from the log-probs
// of its one-token answer) runs through the backends like any tier and is recorded as
// a kVerifier entry after the tier it scored.
//
// Threading: runs on the worker's io_context like dispatch_chat. Everything `in` points
// to must outlive the coroutine.
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "config/config.h"
#include "core/chat.h"
#include "core/error.h"
#include "core/money.h"
#include "policies/policy.h"
#include "policies/prices.h"
#include "router/dispatch.h"
#include "router/request_trace.h"
#include "router/tier_answer.h"

namespace frugal::router {

struct CascadeInput {
  const config::GatewayConfig* cfg = nullptr;    // resolves tier models to targets
  // Every tier's targets, resolved once (router/route_targets.h), in plan order; null:
  // each tier is resolved from `cfg` as it is tried.
  const std::vector<Result<std::vector<Target>>>* tier_targets = nullptr;
  const policies::RoutePlan* plan = nullptr;     // at least one tier
  const policies::PriceTable* prices = nullptr;  // null: every tier costs 0 (no policy)
  // The client's request. Each tier's dispatch sets its `traceparent` (naming the
  // tier's span) before sending it.
  ChatRequest* req = nullptr;
  // The request's W3C trace: upstream requests carry a traceparent in it ("": none).
  std::string_view trace_id;
  bool sampled = true;
  std::string_view response_schema_json;         // the request's json_schema, for rules
  std::string_view question;                     // the last user message, for verifiers
};

struct CascadeOutcome {
  // The answer for the client: a ReplayCall of an accepted buffered tier, or a live
  // call (2xx, or a final error status whose body is complete). Null when `error` is set.
  std::shared_ptr<backends::Call> call;
  std::optional<Error> error;  // cancelled, or the last tier could not be started
  int answer_tier = -1;        // index into plan->tiers of the tier `call` belongs to
  bool live = false;           // `call` is a live upstream call; the caller completes its entry
  Target target;               // where `call` came from
  // Every finished tier and verifier call, in order (an accepted buffered tier is the
  // last entry; a live tier is not here).
  std::vector<TierAttempt> tiers;
  // The live tier as started (model, provider, transport attempts, start time): the
  // caller completes it when the answer ends.
  TierAttempt live_tier;
  Money cost;                  // sum of `tiers`' costs
  Usage answer_usage;          // the accepted buffered tier's usage (not for live)
  int64_t upstream_wait_us = 0;         // time spent waiting on upstreams
  std::string pricing_error;   // set when a model had no price (its cost counted as 0)
};

boost::asio::awaitable<CascadeOutcome> run_cascade(Backends& backends, const CascadeInput& in,
                                                   DispatchControl& control);

// What tier `tier` sends when it differs from the client's request (nullopt: send that
// as is): log-probs (and enough alternatives) asked for when the tier's rule needs them
// and the tier will be buffered.
std::optional<ChatRequest> tier_request(const ChatRequest& client, const policies::PlannedTier& tier,
                                        bool buffered);

// Canonical SSE for an accepted buffered stream: every payload as a `data:` event
// (log-probs stripped unless `keep_logprobs`), then `data: [DONE]`.
std::string replay_sse(const std::vector<std::string>& payloads, bool keep_logprobs);

// Prices one tier: 0 with `pricing_error` set when the model has no price or there is
// no price table.
Money price_tier(const policies::PriceTable* prices, std::string_view model, const Usage& usage,
                 int64_t busy_us, std::string* pricing_error);
// Prices a finished attempt from its usage and busy time (last_byte_us − started_us):
// sets its cost and price source (policies/prices.h: the route's model, else the upstream
// model its target named); a model without a price that used tokens is kUnknown at 0,
// and `pricing_error` (when empty) says which.
void price_attempt(const policies::PriceTable* prices, TierAttempt& t, std::string* pricing_error);

}  // namespace frugal::router
