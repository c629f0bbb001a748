#pragma once
// The built-in price catalogue (config/prices/catalogue.yaml, compiled into the binary):
// public list prices of OpenAI and Anthropic models, versioned and dated, with a source
// note per provider. policies/ builds the fallback price table from it; a policy's own
// `prices:` win over it (policies/prices.h).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/policy_config.h"
#include "core/error.h"

namespace frugal::config {

struct CatalogueModel {
  std::string provider;           // the `providers:` key (openai, anthropic)
  PriceSpec price;                // model, token prices (never gpu_hour)
  std::vector<std::string> aliases;  // other names with the same prices (dated snapshots)
  std::string checked;            // official | secondary (see the catalogue's header)
};

struct CatalogueProvider {
  std::string name;
  std::string source;  // where the prices were read, and what is not modelled
  int batch_discount_percent = 0;
};

struct PriceCatalogue {
  std::string version;  // e.g. "2026.12.06": what a ledger row names when it priced a tier
  std::string date;     // YYYY-MM-DD the prices were read
  std::vector<CatalogueProvider> providers;
  std::vector<CatalogueModel> models;  // in file order

  // The entry for `model` by its name or one of its aliases; nullptr when absent.
  const CatalogueModel* find(const std::string& model) const;
};

// Parses catalogue YAML (no ${VAR} expansion). Errors name source:line:col and the key,
// like a policy's; a model listed twice (by name or alias) is an error.
Result<PriceCatalogue> load_price_catalogue_text(const std::string& text, const std::string& source);

// The catalogue compiled into this binary, parsed once. A malformed embedded catalogue is
// a build defect: it aborts with its error (tests/config/price_catalogue_test.cpp loads it).
const PriceCatalogue& builtin_price_catalogue();
// The embedded YAML text as shipped.
const std::string& builtin_price_catalogue_text();

}  // namespace frugal::config
