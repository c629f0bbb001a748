#pragma once
#include <string>

#include "router/ledger.h"

namespace frugal::router::testing {

// prefix + i. (Not `"a" + std::to_string(i)`: GCC 12 at -O3 raises a false -Wrestrict.)
inline std::string numbered(const char* prefix, int i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}

// A two-tier request: tier 1 (small) rejected, tier 2 (big) accepted.
inline LedgerRecord two_tier_record(std::string id, int64_t wall_us, std::string key = "key-1",
                                    std::string type = "classify") {
  LedgerRecord r;
  r.request_id = std::move(id);
  r.wall_us = wall_us;
  r.key_id = std::move(key);
  r.team = "search";
  r.request_type = type;
  r.route = type;
  r.dialect = "openai";
  LedgerTier a;
  a.model = "small";
  a.provider = "engine";
  a.usage.input_tokens = 1'000;
  a.usage.output_tokens = 10;
  a.cost = Money::from_micros(233);
  a.latency_us = 50'000;
  a.ttft_us = 9'000;
  a.status = TierStatus::kRejected;
  a.score = -0.43;
  a.reason = "mean_logprob -0.433 < -0.350";
  LedgerTier b;
  b.model = "big";
  b.provider = "openai";
  b.usage.input_tokens = 1'000;
  b.usage.cached_input_tokens = 400;
  b.usage.cache_write_5m_tokens = 100;
  b.usage.output_tokens = 12;
  b.usage.reported = true;
  b.cost = Money::from_micros(1'156);
  b.latency_us = 400'000;
  b.ttft_us = 120'000;
  b.status = TierStatus::kAccepted;
  b.reason = "no rule";
  r.tiers = {a, b};
  r.cache = CacheOutcome::kMiss;
  r.answer_model = "big";
  r.total_cost = Money::from_micros(1'389);
  r.baseline = Money::from_micros(2'620);
  r.savings = Money::from_micros(1'231);
  return r;
}

}  // namespace frugal::router::testing
