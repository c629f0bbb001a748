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
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/policy_config.h"
#include "core/error.h"
#include "core/money.h"
#include "core/usage.h"

namespace frugal::policies {

struct ModelPrice {
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

class PriceTable {
 public:
  PriceTable() = default;
  explicit PriceTable(const std::vector<config::PriceSpec>& specs);

  void set(std::string model, ModelPrice price);
  const ModelPrice* find(std::string_view model) const;

  // kNotFound for a model without a price.
  Result<TierCost> cost_of(std::string_view model, const Usage& usage, int64_t busy_us) const;
  Result<Money> baseline_of(std::string_view reference_model, const Usage& usage) const;

 private:
  std::map<std::string, ModelPrice, std::less<>> prices_;
};

// Pure pricing of one usage at one price (what cost_of does after the lookup).
TierCost price_usage(const ModelPrice& p, const Usage& usage, int64_t busy_us);
Money price_baseline(const ModelPrice& p, const Usage& usage);

}  // namespace frugal::policies
