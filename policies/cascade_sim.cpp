#include "policies/cascade_sim.h"

namespace frugal::policies {

SimResult simulate_cascade(const RoutePlan& plan, const PriceTable& prices,
                           std::span<const TierOutcome> outcomes) {
  SimResult r;
  const size_t n = std::min(plan.tiers.size(), outcomes.size());
  for (size_t i = 0; i < n; ++i) {
    const PlannedTier& tier = plan.tiers[i];
    const TierOutcome& out = outcomes[i];
    SimTier st;
    st.model = tier.model;
    auto cost = prices.cost_of(tier.model, out.usage, out.busy_us);
    if (cost) st.cost = *cost;
    else if (r.pricing_error.empty()) r.pricing_error = cost.error().message;
    r.total_cost += st.cost.total;
    if (out.error) {
      st.verdict = TierVerdict::kError;
      st.decision.reason = out.error_message.empty() ? "error" : std::string(out.error_message);
      r.tiers.push_back(std::move(st));
      continue;
    }
    bool accepted = true;
    if (tier.rule) {
      st.decision = tier.rule->evaluate(out.answer);
      accepted = st.decision.accepted;
      if (!accepted && tier.last) st.decision.reason = "last tier answers: " + st.decision.reason;
    } else {
      st.decision.accepted = true;
      st.decision.reason = "no rule";
    }
    if (accepted || tier.last) {
      st.verdict = TierVerdict::kAccepted;
      r.tiers.push_back(std::move(st));
      r.accepted_tier = static_cast<int>(i);
      auto base = prices.baseline_of(plan.reference_model, out.usage);
      if (base) r.baseline = *base;
      else if (r.pricing_error.empty()) r.pricing_error = base.error().message;
      break;
    }
    st.verdict = TierVerdict::kRejected;
    r.tiers.push_back(std::move(st));
  }
  r.savings = r.baseline - r.total_cost;
  return r;
}

}  // namespace frugal::policies
