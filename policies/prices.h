#pragma once
// Price table and cost attribution, all in integer micro-dollars (core/money.h).
//
// Token classes are priced separately, each rounded half-up to the micro-dollar, then
// summed: uncached input = input_tokens − cached − cache_write_5m − cache_write_1h
// (Usage::input_tokens counts every prompt token), at `input`; cached at
// `cached_input`; cache writes at `cache_write_5m` / `cache_write_1h`; output
// (reasoning included) at `output`. Absent prices fall back: cached_input and
// cache_write_5m to input, cache_write_1h to cache_write_5m.
// GPU-hour models cost gpu_hour × busy_us / 3.6e9, rounded half-up; tokens are free.
//
// Baseline: what the reference model would have charged for the same tokens, with
// every prompt token priced as plain input (the reference model is assumed to have no
// prompt-cache hit: a conservative baseline that does not credit caching to savings
// twice) and output at its output price.
//
// Where a price comes from: a policy's own `prices:` entry wins; else the built-in
// catalogue (config/price_catalogue.h) by the model's name or alias; else, for a tier,
// the catalogue price of the upstream model its target names (an alias `fast` that goes to
// gpt-4o-mini is priced as gpt-4o-mini). A model in none of them has no price: its
// tokens are booked with price unknown (the request's cost is then a lower bound), never
// silently as $0.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/policy_config.h"
#include "core/error.h"
#include "core/money.h"
#include "core/usage.h"
#include "policies/price_source.h"

namespace frugal::policies {

struct ModelPrice {
  PriceSource source = PriceSource::kPolicy;
  bool per_gpu_hour = false;
  int64_t input = 0;  // micro-dollars per 1M tokens
  int64_t cached_input = 0;
  int64_t cache_write_5m = 0;
  int64_t cache_write_1h = 0;
  int64_t output = 0;
  int64_t gpu_hour = 0;  // micro-dollars per hour of busy time (priced to the picodollar, rounded)
};

struct TierCost {
  Money uncached_input;
  Money cached_input;
  Money cache_write;  // 5m + 1h
  Money output;
  Money gpu;
  Money total;
};

// One priced use of a model: its cost and who priced it.
struct PricedCost {
  TierCost cost;
  PriceSource source = PriceSource::kNone;
};

class PriceTable {
 public:
  PriceTable() = default;
  // The policy's prices (source kPolicy), nothing else.
  explicit PriceTable(const std::vector<config::PriceSpec>& specs);
  // The policy's prices in front of `fallback` (the catalogue table), which must outlive it.
  PriceTable(const std::vector<config::PriceSpec>& specs, const PriceTable* fallback);

  void set(std::string model, ModelPrice price);
  // This table's own entry, else the fallback's.
  const ModelPrice* find(std::string_view model) const;
  // find(model), else (a tier's target) find(upstream_model).
  const ModelPrice* find(std::string_view model, std::string_view upstream_model) const;
  // The fallback table's catalogue version ("" without one); a catalogue table's own.
  const std::string& catalogue_version() const;
  void set_catalogue_version(std::string v) { catalogue_version_ = std::move(v); }
  size_t size() const { return prices_.size(); }
  const std::map<std::string, ModelPrice, std::less<>>& entries() const { return prices_; }

  // Prices a tier's usage. Never fails: a model without a price is kUnknown (cost 0)
  // when it used tokens, kNone when it used none.
  PricedCost price(std::string_view model, std::string_view upstream_model, const Usage& usage,
                   int64_t busy_us) const;

  // kNotFound for a model without a price.
  Result<TierCost> cost_of(std::string_view model, const Usage& usage, int64_t busy_us) const;
  Result<Money> baseline_of(std::string_view reference_model, const Usage& usage) const;

 private:
  std::map<std::string, ModelPrice, std::less<>> prices_;
  const PriceTable* fallback_ = nullptr;
  std::string catalogue_version_;
};

// The built-in catalogue as a price table (every name and alias; source kCatalogue),
// built once; what prices requests when there is no policy, and every policy's fallback.
const PriceTable& builtin_prices();

// Pure pricing of one usage at one price (what cost_of does after the lookup).
TierCost price_usage(const ModelPrice& p, const Usage& usage, int64_t busy_us);
Money price_baseline(const ModelPrice& p, const Usage& usage);

}  // namespace frugal::policies
