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
#include "policies/price_source.h"

namespace frugal::router {

// kVerifier: not a tier but a verifier call made to score one (its tokens and cost are
// attributed to the verifier model; it is not an attempt of the cascade).
enum class TierStatus : uint8_t { kAccepted, kRejected, kError, kVerifier };
enum class CacheOutcome : uint8_t { kNone, kHit, kMiss, kBypass };

// What a route's output shaping did to the request before any tier saw it
// (router/output_shaping.h; the route's options in docs/policies.md).
enum ShapingBit : uint8_t {
  kShapedMaxTokensDefault = 1 << 0,  // max_tokens set: the client gave none
  kShapedMaxTokensCap = 1 << 1,      // the client's max_tokens lowered to the cap
  kShapedStop = 1 << 2,              // stop sequences added
  kShapedConcise = 1 << 3,           // the concise-answer instruction appended to the system prompt
  kShapedReasoningEffort = 1 << 4,   // reasoning_effort set: the client gave none
};
inline constexpr uint8_t kShapingBits = 0x1f;
struct ShapingRecord {
  uint8_t applied = 0;     // ShapingBit set
  int64_t max_tokens = 0;  // the request's max_tokens after shaping (0: it has none)
  bool operator==(const ShapingRecord&) const = default;
};
// "max_tokens_default,stop" ... ("" for none), in bit order.
std::string shaping_names(uint8_t applied);

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
  policies::PriceSource price = policies::PriceSource::kNone;  // who priced `cost`
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
  // Pricing: the catalogue version when the built-in catalogue priced a tier or the
  // baseline ("" otherwise: the policy priced everything, or nothing was priced); a
  // tier or the baseline used tokens of a model without a price (counted as 0: the
  // cost, or the baseline, is a lower bound).
  std::string catalogue_version;
  bool price_unknown = false;
  ShapingRecord shaping;
};

}  // namespace frugal::router
