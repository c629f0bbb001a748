#include "gateway/snapshot.h"

#include "core/ids.h"
#include "router/dispatch.h"
#include "router/ledger.h"

namespace frugal::gateway {

namespace {

bool same_budgets(const std::vector<config::BudgetSpec>& a, const std::vector<config::BudgetSpec>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& x = a[i];
    const auto& y = b[i];
    if (x.name != y.name || x.team != y.team || x.key != y.key || x.request_type != y.request_type ||
        x.per != y.per || x.soft != y.soft || x.hard != y.hard)
      return false;
  }
  return true;
}

Error unresolved(const std::string& where, const std::string& what, const std::string& model, const Error& e) {
  return make_error(ErrorKind::kInvalidRequest,
                    where + ": " + what + " '" + model + "' is not served by this gateway (" + e.message +
                        "): add it under 'models:' or a 'passthrough:' prefix of the gateway config");
}

}  // namespace

const policies::Clock& budget_clock() {
  static const policies::SystemClock clock;
  return clock;
}

Result<std::shared_ptr<const policies::CompiledPolicy>> load_policy_for(const config::GatewayConfig& cfg) {
  if (cfg.policy_path.empty()) return std::shared_ptr<const policies::CompiledPolicy>();
  auto pc = config::load_policy_file(cfg.policy_path);
  if (!pc) return std::move(pc).error();
  for (const auto& route : pc->routes) {
    for (const auto& tier : route.tiers) {
      if (auto t = router::resolve_model(cfg, tier.model); !t)
        return unresolved(tier.where, "tier model", tier.model, t.error());
      // Verifier models sit in the rule tree; walk it.
      if (!tier.accept) continue;
      std::vector<const config::RuleSpec*> stack{&*tier.accept};
      while (!stack.empty()) {
        const config::RuleSpec* r = stack.back();
        stack.pop_back();
        if (r->kind == config::RuleSpec::Kind::kVerifier) {
          if (auto t = router::resolve_model(cfg, r->verifier.model); !t)
            return unresolved(r->where, "verifier model", r->verifier.model, t.error());
        }
        for (const auto& c : r->children) stack.push_back(&c);
      }
    }
  }
  auto compiled = policies::compile_policy(*pc);
  if (!compiled) return std::move(compiled).error();
  return std::move(*compiled);
}

Result<std::shared_ptr<policies::BudgetTracker>> budgets_for(const policies::CompiledPolicy* policy,
                                                             const Snapshot* previous, router::Ledger* ledger) {
  if (!policy || policy->config().budgets.empty()) return std::shared_ptr<policies::BudgetTracker>();
  if (previous && previous->policy && previous->budgets &&
      same_budgets(previous->policy->config().budgets, policy->config().budgets))
    return previous->budgets;
  auto tracker = std::make_shared<policies::BudgetTracker>(policy->config().budgets, &budget_clock());
  if (ledger) {
    // Spend still queued in the ledger is not in the rollups yet.
    if (auto f = ledger->flush(); !f) return std::move(f).error();
    FRUGAL_TRY(router::restore_budgets(*ledger, *tracker, budget_clock().now_us()));
  }
  return tracker;
}

}  // namespace frugal::gateway
