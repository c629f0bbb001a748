#include "config/policy_writer.h"

#include <yaml-cpp/yaml.h>

#include <charconv>

#include "config/policy_config.h"

namespace frugal::config {

namespace {

// The shortest text that reads back as the same double.
std::string shortest(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

}  // namespace

Result<std::string> rewrite_policy_routes(const std::string& text, const std::string& source,
                                          const std::vector<RouteRewrite>& routes) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return make_error(ErrorKind::kInvalidRequest, source + ": not a policy mapping");
    YAML::Node rs = root["routes"];
    for (const auto& r : routes) {
      if (r.cascade.empty()) return make_error(ErrorKind::kInvalidRequest, "route " + r.request_type + ": no tiers");
      YAML::Node route = rs[r.request_type];
      YAML::Node cascade(YAML::NodeType::Sequence);
      for (const auto& t : r.cascade) {
        YAML::Node tier(YAML::NodeType::Map);
        tier["model"] = t.model;
        if (t.min_confidence) {
          YAML::Node min(YAML::NodeType::Map);
          min["min"] = YAML::Load(shortest(*t.min_confidence));
          YAML::Node accept(YAML::NodeType::Map);
          accept["confidence"] = min;
          accept.SetStyle(YAML::EmitterStyle::Flow);
          tier["accept"] = accept;
        }
        cascade.push_back(tier);
      }
      route["cascade"] = cascade;
      rs[r.request_type] = route;
    }
    root["routes"] = rs;
    YAML::Emitter em;
    em << root;
    if (!em.good()) return make_error(ErrorKind::kInternal, std::string("emitting the policy: ") + em.GetLastError());
    std::string out = std::string(em.c_str()) + "\n";
    if (auto check = load_policy_text(out, source); !check)
      return make_error(ErrorKind::kInternal, "the rewritten policy does not load: " + check.error().message);
    return out;
  } catch (const YAML::Exception& e) {
    return make_error(ErrorKind::kInvalidRequest, source + ": " + e.what());
  }
}

}  // namespace frugal::config
