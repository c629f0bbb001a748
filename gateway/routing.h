#pragma once
// The policy half of a ChatExchange (its methods are defined in gateway/routing.cpp):
//   start:   request facts → request type → route → budget check → cascade (or the
//            requested model when the type has no route, or there is no policy)
//   observe: the live tier's first byte (TTFT) and, when its rule is scored at the
//            end, its bytes
//   finish:  the ledger row (every tier, costs, baseline, savings), the budget spend,
//            the final cost headers (plain responses) or trailers (streams)
//   commit:  waits until that row is durable, before the response's last bytes
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gateway/snapshot.h"
#include "policies/request_facts.h"
#include "router/cascade.h"

namespace frugal::gateway {

struct RouteState {
  explicit RouteState(std::shared_ptr<const Snapshot> s) : snap(std::move(s)) {}

  std::shared_ptr<const Snapshot> snap;  // config + policy + budgets for this request
  int64_t wall_start_us = 0;
  std::string request_type = "default";
  std::string route_name = "passthrough";
  const policies::RoutePlan* plan = nullptr;  // the policy's route, or &passthrough
  policies::RoutePlan passthrough;            // one live tier: the requested model
  std::string key_id;  // the exchange's tenant id (a hash of the API key; "" without one)
  std::string team;
  policies::ChatFacts chat_facts;
  bool client_stream = false;
  router::CascadeOutcome outcome;
  bool dispatched = false;

  // The live tier (outcome.live), completed at finish().
  int64_t live_first_byte_us = 0;
  bool keep_live_bytes = false;  // its rule is scored at the end, for the ledger
  std::string live_bytes;

  // Set by on_cache_hit(): the ledger books the request to this pseudo-model.
  std::string cache_model;

  bool recorded = false;
  uint64_t commit_batch = 0;  // the ledger lane batch holding the row, 0: none to wait for
};

}  // namespace frugal::gateway
