// Routing policies (config/policy_config.cpp) from an in-memory text, and what a reload
// does next with an accepted one: compile it (policies/policy.cpp: regexes, budgets,
// prices) and classify a request with it. Any bytes must load or be rejected with a
// message, never crash or hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/policy_config.h"
#include "policies/policy.h"
#include "policies/request_facts.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto pc = config::load_policy_text(text, "<fuzz>");
  fuzz::accepted(pc.ok());
  if (!pc.ok()) {
    fuzz::require(!pc.error().message.empty(), "a rejection without a message");
    return 0;
  }
  auto compiled = policies::compile_policy(*pc);
  if (!compiled.ok()) return 0;
  const policies::StringPair headers[] = {{"x-frugal-tags", "a, b"}, {"user-agent", "fuzz"}};
  policies::RequestFacts facts;
  facts.headers = headers;
  facts.path = "/v1/chat/completions";
  facts.model = "gpt-4o-mini";
  facts.system_prompt = "You are terse.";
  facts.last_user_message = "Write a sorting function in Python.";
  facts.prompt_chars = 50;
  facts.prompt_tokens_estimate = 13;
  const policies::RequestType& type = policies::classify(**compiled, facts);
  (void)policies::plan_route(**compiled, type.name);
  return 0;
}
