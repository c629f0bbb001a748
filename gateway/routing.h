#pragma once
// The policy stage of a ChatExchange (its methods are defined in gateway/routing.cpp):
//   start:   request facts → request type → route → budget check → cascade (or the
//            requested model when the type has no route, or there is no policy)
//   observe: a live tier's first byte (TTFT) and, when its rule is scored at the end,
//            its answer (the relay's events, or the whole body)
//   finish:  the live tier completed and priced, the baseline, the budget spend
// Everything it decides goes into the exchange's RequestTrace; this is only what it
// needs while the request runs.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/sse.h"
#include "gateway/limit_holds.h"
#include "gateway/snapshot.h"
#include "policies/request_facts.h"
#include "router/cascade.h"
#include "router/output_shaping.h"

namespace frugal::gateway {

struct RouteState {
  explicit RouteState(std::shared_ptr<const Snapshot> s) : snap(std::move(s)) {}

  std::shared_ptr<const Snapshot> snap;  // config + policy + budgets for this request
  const policies::RoutePlan* plan = nullptr;  // the policy's route, or &passthrough
  policies::RoutePlan passthrough;            // one live tier: the requested model
  policies::ChatFacts chat_facts;
  router::ShapedBodies shaped;  // the request's bodies after the route's output shaping
  router::CascadeOutcome outcome;
  LimitHolds holds;  // budget reservations, rate scopes, a stream slot (gateway/exchange_limits.cpp)
  size_t live_index = 0;  // the live tier's entry in the trace's tiers

  // The live tier's answer, kept when its rule is scored at the end (for the ledger).
  bool keep_live_answer = false;
  size_t live_answer_bytes = 0;
  std::vector<std::string> live_payloads;  // a stream's event payloads, [DONE] excluded
  std::string live_body;                   // a whole answer

  // The capture stage (gateway/capture_stage.cpp): this request is captured (and shadowed).
  bool capture = false;
  bool shadow = false;
  std::string capture_request;                 // the redacted request JSON ("" for drop)
  std::string shadow_body;                     // the client's body, for the shadow call
  size_t capture_bytes = 0;
  std::vector<std::string> capture_payloads;   // the answer's stream payloads
  std::string capture_body;                    // or its whole body
};

// Whether the route captures (and shadows) this request; keeps what the line needs.
void decide_capture(RouteState& rs, const ChatRequest& req);
// The answer's bytes as the relay sees them, kept (bounded) for the capture line.
void keep_capture_answer(RouteState& rs, const SseEvent* ev, std::string_view body);

}  // namespace frugal::gateway
