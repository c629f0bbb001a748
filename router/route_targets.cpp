#include "router/route_targets.h"

#include <algorithm>

namespace frugal::router {

std::shared_ptr<ReplicaPicker> ReplicaPickers::of(const config::ModelAlias& alias) {
  std::vector<std::string> names;
  for (const auto& r : alias.replicas) names.push_back(r.provider + "/" + r.model);
  std::lock_guard lk(mu_);
  Entry& e = pickers_[alias.name];
  if (!e.picker || e.names != names) {
    ReplicaPickerOptions opts;
    opts.epsilon = alias.replica_load_slack;
    e.picker = std::make_shared<ReplicaPicker>(names, opts);
    e.names = std::move(names);
  }
  return e.picker;
}

RouteTargets& RouteTargets::operator=(RouteTargets&& o) noexcept {
  if (this != &o) {
    release();
    tiers = std::move(o.tiers);
    picker_ = std::move(o.picker_);
    replica_ = o.replica_;
  }
  return *this;
}

void RouteTargets::hold(std::shared_ptr<ReplicaPicker> picker, size_t replica) {
  release();
  picker_ = std::move(picker);
  replica_ = replica;
}

void RouteTargets::release() {
  if (picker_) picker_->release(replica_);
  picker_.reset();
}

RouteTargets resolve_route(RouteTargetsInput in) {
  RouteTargets out;
  out.tiers.reserve(in.plan->tiers.size());
  for (size_t i = 0; i < in.plan->tiers.size(); ++i) {
    if (i == 0 && in.passthrough && in.requested) out.tiers.emplace_back(std::move(*in.requested));
    else out.tiers.push_back(resolve_model(*in.cfg, in.plan->tiers[i].model));
  }
  if (!in.passthrough || !in.pickers || !in.prefix || out.tiers.empty() || !out.tiers.front()) return out;
  const config::ModelAlias* alias = find_alias(*in.cfg, in.plan->tiers.front().model);
  if (!alias || alias->replicas.empty()) return out;
  auto picker = in.pickers->of(*alias);
  if (auto pick = picker->pick_and_acquire(in.prefix())) {
    std::vector<Target>& t = *out.tiers.front();
    std::rotate(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(*pick),
                t.begin() + static_cast<std::ptrdiff_t>(alias->replicas.size()));
    out.hold(std::move(picker), *pick);
  }
  return out;
}

}  // namespace frugal::router
