#include "policies/prices.h"

#include <algorithm>

#include "config/price_catalogue.h"

namespace frugal::policies {

namespace {

ModelPrice model_price(const config::PriceSpec& s, PriceSource source) {
  ModelPrice p;
  p.source = source;
  if (s.gpu_hour) {
    p.per_gpu_hour = true;
    p.gpu_hour = *s.gpu_hour;
  } else {
    p.input = s.input.value_or(0);
    p.output = s.output.value_or(0);
    p.cached_input = s.cached_input.value_or(p.input);
    p.cache_write_5m = s.cache_write_5m.value_or(p.input);
    p.cache_write_1h = s.cache_write_1h.value_or(p.cache_write_5m);
  }
  return p;
}

bool has_tokens(const Usage& u) {
  return u.input_tokens > 0 || u.output_tokens > 0 || u.cached_input_tokens > 0 || u.cache_write_5m_tokens > 0 ||
         u.cache_write_1h_tokens > 0 || u.reasoning_tokens > 0;
}

}  // namespace

const char* price_source_name(PriceSource s) {
  switch (s) {
    case PriceSource::kNone: return "none";
    case PriceSource::kPolicy: return "policy";
    case PriceSource::kCatalogue: return "catalogue";
    case PriceSource::kUnknown: return "unknown";
  }
  return "unknown";
}

PriceTable::PriceTable(const std::vector<config::PriceSpec>& specs, const PriceTable* fallback)
    : PriceTable(specs) {
  fallback_ = fallback;
}

const std::string& PriceTable::catalogue_version() const {
  return fallback_ && catalogue_version_.empty() ? fallback_->catalogue_version() : catalogue_version_;
}

const PriceTable& builtin_prices() {
  static const PriceTable table = [] {
    PriceTable t;
    const config::PriceCatalogue& c = config::builtin_price_catalogue();
    for (const auto& m : c.models) {
      const ModelPrice p = model_price(m.price, PriceSource::kCatalogue);
      t.set(m.price.model, p);
      for (const auto& a : m.aliases) t.set(a, p);
    }
    t.set_catalogue_version(c.version);
    return t;
  }();
  return table;
}

PricedCost PriceTable::price(std::string_view model, std::string_view upstream_model, const Usage& usage,
                             int64_t busy_us) const {
  PricedCost out;
  if (const ModelPrice* p = find(model, upstream_model)) {
    out.cost = price_usage(*p, usage, busy_us);
    out.source = p->source;
  } else if (has_tokens(usage)) {
    out.source = PriceSource::kUnknown;
  }
  return out;
}

PriceTable::PriceTable(const std::vector<config::PriceSpec>& specs) {
  for (const auto& s : specs) set(s.model, model_price(s, PriceSource::kPolicy));
}

void PriceTable::set(std::string model, ModelPrice price) { prices_[std::move(model)] = price; }

const ModelPrice* PriceTable::find(std::string_view model) const {
  auto it = prices_.find(model);
  if (it != prices_.end()) return &it->second;
  return fallback_ ? fallback_->find(model) : nullptr;
}

const ModelPrice* PriceTable::find(std::string_view model, std::string_view upstream_model) const {
  if (const ModelPrice* p = find(model)) return p;
  return upstream_model.empty() || upstream_model == model ? nullptr : find(upstream_model);
}

TierCost price_usage(const ModelPrice& p, const Usage& u, int64_t busy_us) {
  TierCost c;
  if (p.per_gpu_hour) {
    // busy_us × micro-dollars per hour / 3.6e9 µs per hour, in picodollars: ×1e6/3.6e9 =
    // /3600. The only rounding in pricing: half up to the picodollar (a measured busy time
    // has no exact price anyway).
    const int128_t num = static_cast<int128_t>(std::max<int64_t>(busy_us, 0)) * p.gpu_hour;
    c.gpu = Money::from_picos((num + 1'800) / 3'600);
    c.total = c.gpu;
    return c;
  }
  const int64_t uncached = std::max<int64_t>(
      0, u.input_tokens - u.cached_input_tokens - u.cache_write_5m_tokens - u.cache_write_1h_tokens);
  c.uncached_input = price_tokens(uncached, p.input);
  c.cached_input = price_tokens(u.cached_input_tokens, p.cached_input);
  c.cache_write = price_tokens(u.cache_write_5m_tokens, p.cache_write_5m) +
                  price_tokens(u.cache_write_1h_tokens, p.cache_write_1h);
  c.output = price_tokens(u.output_tokens, p.output);
  c.total = c.uncached_input + c.cached_input + c.cache_write + c.output;
  return c;
}

Money price_baseline(const ModelPrice& p, const Usage& u) {
  return price_tokens(u.input_tokens, p.input) + price_tokens(u.output_tokens, p.output);
}

Result<TierCost> PriceTable::cost_of(std::string_view model, const Usage& usage, int64_t busy_us) const {
  const ModelPrice* p = find(model);
  if (!p) return make_error(ErrorKind::kNotFound, "no price for model '" + std::string(model) + "'");
  return price_usage(*p, usage, busy_us);
}

Result<Money> PriceTable::baseline_of(std::string_view reference_model, const Usage& usage) const {
  const ModelPrice* p = find(reference_model);
  if (!p) return make_error(ErrorKind::kNotFound, "no price for model '" + std::string(reference_model) + "'");
  return price_baseline(*p, usage);
}

}  // namespace frugal::policies
