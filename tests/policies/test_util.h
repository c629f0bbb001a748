#pragma once
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "config/policy_config.h"
#include "example_policy.h"
#include "policies/policy.h"

namespace frugal::policies::testing {

inline std::shared_ptr<const CompiledPolicy> compile_text(const std::string& text) {
  auto cfg = config::load_policy_text(text, "test.yaml");
  REQUIRE_MESSAGE(cfg.ok(), (cfg.ok() ? "" : cfg.error().message));
  auto p = compile_policy(*cfg);
  REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message));
  return *p;
}

inline std::shared_ptr<const CompiledPolicy> example_policy() { return compile_text(kExamplePolicy); }

}  // namespace frugal::policies::testing
