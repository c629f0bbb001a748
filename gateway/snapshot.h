#pragma once
// What a request is served with: the gateway config, the compiled routing policy and
// the budget state, loaded together and swapped together. The Server holds the current
// snapshot in an atomic shared_ptr; a request takes one reference when it starts and
// keeps it to the end, so a reload never changes a request in flight and a request
// never sees a new policy with an old config (or the reverse).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "policies/budget.h"
#include "policies/policy.h"

namespace frugal::router {
class Ledger;
}

namespace frugal::gateway {

struct Snapshot {
  std::shared_ptr<const config::GatewayConfig> cfg;
  std::shared_ptr<const policies::CompiledPolicy> policy;  // null: no `policy:` configured
  std::shared_ptr<policies::BudgetTracker> budgets;       // null: the policy has no budgets
  uint64_t generation = 0;                                // 1 at start, +1 per successful reload
  std::vector<std::string> restart_required;  // keys this reload left as running (restart_required_keys)
};

// Loads and compiles the policy `cfg.policy_path` names and checks it against `cfg`:
// every tier and verifier model must resolve to a target (an alias or a passthrough
// rule). Null when the config names no policy. Errors (kInvalidRequest) read
// "file:line:col: key 'a.b': what was expected".
Result<std::shared_ptr<const policies::CompiledPolicy>> load_policy_for(const config::GatewayConfig& cfg);

// The budget tracker for `policy`: `previous`'s when the budgets are unchanged (spend
// carries over a reload), otherwise a new one rebuilt from the ledger's rollups.
// Null when the policy has no budgets.
Result<std::shared_ptr<policies::BudgetTracker>> budgets_for(const policies::CompiledPolicy* policy,
                                                             const Snapshot* previous, router::Ledger* ledger);

// The wall clock budgets run on.
const policies::Clock& budget_clock();

}  // namespace frugal::gateway
