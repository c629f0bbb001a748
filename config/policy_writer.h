#pragma once
// Rewrites routes of a policy file's text (what `frugal calibrate --write` emits):
// every other key — request types, prices, budgets, other routes, a route's
// reference_model, stream and cache — is kept as it was. Comments are not kept (the
// text is re-emitted). The result is checked by loading it (load_policy_text).
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace frugal::config {

struct TierRewrite {
  std::string model;
  std::optional<double> min_confidence;  // accept: { confidence: { min: X } }; none: no rule
};

struct RouteRewrite {
  std::string request_type;
  std::vector<TierRewrite> cascade;  // >= 1
};

Result<std::string> rewrite_policy_routes(const std::string& text, const std::string& source,
                                          const std::vector<RouteRewrite>& routes);

}  // namespace frugal::config
