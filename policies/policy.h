#pragma once
// CompiledPolicy: a validated PolicyConfig turned into decision functions.
//
//   auto pc   = config::load_policy_file("policy.yaml");          // config/
//   auto pol  = compile_policy(*pc);                               // once per (re)load
//   const RequestType& t = classify(**pol, facts);                 // per request
//   const RoutePlan* plan = plan_route(**pol, t.name);             // per request
//
// A CompiledPolicy is immutable and shared (shared_ptr<const>): a reload compiles a
// new one and swaps the pointer; requests in flight keep the one they started with.
// Every reference returned (RequestType, RoutePlan, AcceptRule) lives as long as the
// policy object. classify() and plan_route() are thread-safe, allocation-free (PCRE2
// match data is per thread) and do no I/O.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/policy_config.h"
#include "core/error.h"
#include "policies/acceptance.h"
#include "policies/prices.h"
#include "policies/request_facts.h"

namespace frugal::policies {

class Matcher;  // compiled request-type matcher tree (policy.cpp)

struct RequestType {
  std::string name;
  size_t index = 0;  // position in the policy; the default type is last
};

struct PlannedTier {
  std::string model;
  const AcceptRule* rule = nullptr;  // nullptr: no rule, always accepted
  bool needs_logprobs = false;       // ask the backend for logprobs
  int top_logprobs = 0;              // ask for this many alternatives (margin needs 2)
  std::optional<config::VerifierSpec> verifier;  // run the verifier before evaluating
  bool last = false;                 // the last tier always answers, whatever its rule says
};

struct CachePlan {
  bool configured = false;  // the route says; else the gateway config's cache settings apply
  bool enabled = false;
  int64_t ttl_ms = 0;
};

struct RoutePlan {
  std::string request_type;
  std::vector<PlannedTier> tiers;  // >= 1, in order
  std::string reference_model;
  config::StreamMode stream_mode = config::StreamMode::kCascade;
  CachePlan cache;
  config::CaptureSpec capture;  // traffic capture and shadow evaluation (docs/replay.md)
  config::OutputShapingSpec shaping;  // "generate less": applied to every request of the route
};

class CompiledPolicy {
 public:
  ~CompiledPolicy();
  const config::PolicyConfig& config() const { return config_; }
  const std::vector<RequestType>& request_types() const { return types_; }
  const PriceTable& prices() const { return prices_; }
  const RoutePlan* route(std::string_view request_type) const;

 private:
  friend Result<std::shared_ptr<const CompiledPolicy>> compile_policy(const config::PolicyConfig&);
  friend const RequestType& classify(const CompiledPolicy&, const RequestFacts&);
  CompiledPolicy() = default;

  config::PolicyConfig config_;
  std::vector<RequestType> types_;
  std::vector<std::unique_ptr<Matcher>> matchers_;  // parallel to types_; null = default
  std::vector<std::unique_ptr<AcceptRule>> rules_;  // owned; PlannedTier::rule points here
  std::vector<RoutePlan> routes_;
  PriceTable prices_;
};

Result<std::shared_ptr<const CompiledPolicy>> compile_policy(const config::PolicyConfig& config);

// First matching request type in policy order; the default type when none matches.
const RequestType& classify(const CompiledPolicy& policy, const RequestFacts& facts);

// The route for a request type, or nullptr when the policy has none for it: the
// request then goes to the model it named, uncascaded (the gateway's plain path).
const RoutePlan* plan_route(const CompiledPolicy& policy, std::string_view request_type);

// Glob match with `*` (any run) and `?` (one byte), whole string.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace frugal::policies
