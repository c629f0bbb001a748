#pragma once
// `frugal prices [--json] [--model M]`: the built-in price catalogue compiled into this
// binary (config/prices/catalogue.yaml): its version, date and sources, and every model's
// list prices in USD per 1M tokens. A policy's own `prices:` win over these.
#include <ostream>
#include <string>
#include <vector>

namespace frugal::gateway {

// Returns the process exit code: 0, 1 (--model names a model the catalogue lacks) or 2 (usage).
int prices_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The catalogue as text and JSON (all models, or the one `model` names by name or alias).
std::string render_prices_table(const std::string& model);
std::string render_prices_json(const std::string& model);

}  // namespace frugal::gateway
