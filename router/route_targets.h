#pragma once
// Every tier's targets for one request, resolved once (aliases, fallbacks, engine
// providers, passthrough rules) before the cache is keyed and the cascade runs; and the
// replica choice for an alias with replicas: requests sharing a prompt prefix go to the
// same replica (its KV or prompt cache is warm) unless it is over its share of the load,
// the other replicas following as fallbacks.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cache/hash.h"
#include "config/config.h"
#include "core/error.h"
#include "policies/policy.h"
#include "router/dispatch.h"
#include "router/replica_picker.h"

namespace frugal::router {

// The replica pickers of a gateway, one per alias with replicas (shared by every I/O
// thread; a picker is rebuilt when its alias's replicas change). Thread-safe.
class ReplicaPickers {
 public:
  std::shared_ptr<ReplicaPicker> of(const config::ModelAlias& alias);

 private:
  struct Entry {
    std::vector<std::string> names;
    std::shared_ptr<ReplicaPicker> picker;
  };
  std::mutex mu_;
  std::map<std::string, Entry> pickers_;
};

// The targets of each tier, in the plan's order, and the replica load slot the request
// holds (returned by release() or the destructor).
class RouteTargets {
 public:
  RouteTargets() = default;
  RouteTargets(RouteTargets&&) noexcept = default;
  RouteTargets& operator=(RouteTargets&& o) noexcept;
  ~RouteTargets() { release(); }

  std::vector<Result<std::vector<Target>>> tiers;

  void hold(std::shared_ptr<ReplicaPicker> picker, size_t replica);
  void release();

 private:
  std::shared_ptr<ReplicaPicker> picker_;
  size_t replica_ = 0;
};

struct RouteTargetsInput {
  const config::GatewayConfig* cfg = nullptr;
  const policies::RoutePlan* plan = nullptr;
  // The plan is the requested model, uncascaded (no policy route): replica affinity
  // applies to it, and `requested` (when given) are its targets already resolved.
  bool passthrough = false;
  std::optional<std::vector<Target>> requested;
  ReplicaPickers* pickers = nullptr;  // null: no replica affinity
  // The request's prompt-prefix hash, asked for only when the model has replicas.
  std::function<cache::Hash128()> prefix;
};

RouteTargets resolve_route(RouteTargetsInput in);

}  // namespace frugal::router
