#pragma once
// One cost-ledger row, as plain structs: what the gateway fills per request and
// router/ledger.h stores. Apart from ledger.h so that code filling records (the
// gateway's exchange, the cascade executor) does not include RocksDB.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/money.h"
#include "core/usage.h"

namespace frugal::router {

// kVerifier: not a tier but a verifier call made to score one (its tokens and cost are
// attributed to the verifier model; it is not an attempt of the cascade).
enum class TierStatus : uint8_t { kAccepted, kRejected, kError, kVerifier };
enum class CacheOutcome : uint8_t { kNone, kHit, kMiss, kBypass };

struct LedgerTier {
  std::string model;
  std::string provider;
  Usage usage;
  Money cost;
  int64_t latency_us = 0;
  int64_t ttft_us = 0;
  TierStatus status = TierStatus::kError;
  std::optional<double> score;
  std::string reason;
};

struct LedgerRecord {
  std::string request_id;
  int64_t wall_us = 0;  // request start, microseconds since the Unix epoch
  std::string key_id;
  std::string team;
  std::string request_type;
  std::string route;
  std::string dialect;       // openai | anthropic
  // Every tier tried, in order, each verifier call right after the tier it scored
  // (empty for a cache hit).
  std::vector<LedgerTier> tiers;
  CacheOutcome cache = CacheOutcome::kNone;
  std::string answer_model;  // the model whose answer was returned ("" if none)
  Money total_cost;
  Money baseline;
  Money savings;
  int status_code = 200;
  bool stream_cancelled = false;
};

}  // namespace frugal::router
