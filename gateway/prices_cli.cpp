#include "gateway/prices_cli.h"

#include <algorithm>
#include <optional>

#include "config/price_catalogue.h"
#include "core/json.h"

namespace frugal::gateway {

namespace {

constexpr const char* kPricesUsage =
    "usage: frugal prices [--json] [--model M]\n"
    "  --model M   only model M (its name or a dated alias)\n"
    "  --json      print JSON instead of the table\n";

// Micro-dollars as a USD decimal with at least two and at most six decimals: 2.50, 0.075.
std::string usd(int64_t micros) {
  std::string frac = std::to_string(micros % 1'000'000);
  frac = std::string(6 - frac.size(), '0') + frac;
  while (frac.size() > 2 && frac.back() == '0') frac.pop_back();
  return std::to_string(micros / 1'000'000) + "." + frac;
}

struct Row {
  const config::CatalogueModel* m;
  int64_t input, cached_input, cache_write_5m, cache_write_1h, output;
};

// Absent classes resolved as the price table resolves them (policies/prices.h).
Row row_of(const config::CatalogueModel& m) {
  const config::PriceSpec& p = m.price;
  Row r{&m, p.input.value_or(0), 0, 0, 0, p.output.value_or(0)};
  r.cached_input = p.cached_input.value_or(r.input);
  r.cache_write_5m = p.cache_write_5m.value_or(r.input);
  r.cache_write_1h = p.cache_write_1h.value_or(r.cache_write_5m);
  return r;
}

std::vector<Row> rows(const config::PriceCatalogue& c, const std::string& model) {
  std::vector<Row> out;
  if (!model.empty()) {
    if (const auto* m = c.find(model)) out.push_back(row_of(*m));
    return out;
  }
  for (const auto& m : c.models) out.push_back(row_of(m));
  return out;
}

int batch_of(const config::PriceCatalogue& c, const std::string& provider) {
  for (const auto& p : c.providers)
    if (p.name == provider) return p.batch_discount_percent;
  return 0;
}

}  // namespace

std::string render_prices_table(const std::string& model) {
  const config::PriceCatalogue& c = config::builtin_price_catalogue();
  std::vector<std::vector<std::string>> lines{{"provider", "model", "input", "cached_input", "cache_write_5m",
                                               "cache_write_1h", "output", "batch_discount", "checked",
                                               "aliases"}};
  for (const Row& r : rows(c, model)) {
    std::string aliases;
    for (const auto& a : r.m->aliases) aliases += (aliases.empty() ? "" : ",") + a;
    lines.push_back({r.m->provider, r.m->price.model, usd(r.input), usd(r.cached_input), usd(r.cache_write_5m),
                     usd(r.cache_write_1h), usd(r.output), std::to_string(batch_of(c, r.m->provider)) + "%",
                     r.m->checked, aliases});
  }
  std::vector<size_t> width(lines[0].size(), 0);
  for (const auto& l : lines)
    for (size_t i = 0; i < l.size(); ++i) width[i] = std::max(width[i], l[i].size());
  std::string out = "price catalogue " + c.version + " (" + c.date + "), USD per 1M tokens\n";
  for (const auto& l : lines) {
    std::string line;
    for (size_t i = 0; i < l.size(); ++i) {
      if (i) line += "  ";
      const size_t pad = width[i] - l[i].size();
      const bool number = i >= 2 && i <= 7;
      line += number ? std::string(pad, ' ') + l[i] : l[i] + std::string(pad, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  out += "\nsources:\n";
  for (const auto& p : c.providers) out += "  " + p.name + ": " + p.source + "\n";
  out += "A policy's own `prices:` entry for a model wins over this catalogue.\n";
  return out;
}

std::string render_prices_json(const std::string& model) {
  const config::PriceCatalogue& c = config::builtin_price_catalogue();
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("version").value(c.version);
  w.key("date").value(c.date);
  w.key("unit").value("USD per 1M tokens");
  w.key("providers").begin_array();
  for (const auto& p : c.providers) {
    w.begin_object();
    w.key("name").value(p.name);
    w.key("source").value(p.source);
    w.key("batch_discount_percent").value(p.batch_discount_percent);
    w.end_object();
  }
  w.end_array();
  w.key("models").begin_array();
  for (const Row& r : rows(c, model)) {
    w.begin_object();
    w.key("model").value(r.m->price.model);
    w.key("provider").value(r.m->provider);
    w.key("aliases").begin_array();
    for (const auto& a : r.m->aliases) w.value(a);
    w.end_array();
    w.key("checked").value(r.m->checked);
    // Exact decimal strings (like every *_usd in frugal's JSON).
    w.key("input_usd").value(usd(r.input));
    w.key("cached_input_usd").value(usd(r.cached_input));
    w.key("cache_write_5m_usd").value(usd(r.cache_write_5m));
    w.key("cache_write_1h_usd").value(usd(r.cache_write_1h));
    w.key("output_usd").value(usd(r.output));
    w.key("batch_discount_percent").value(batch_of(c, r.m->provider));
    w.end_object();
  }
  w.end_array();
  w.end_object();
  out += '\n';
  return out;
}

int prices_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  bool json = false;
  std::string model;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--model" && i + 1 < args.size() && !args[i + 1].empty()) {
      model = args[++i];
    } else {
      err << "frugal prices: unexpected argument '" << args[i] << "'\n" << kPricesUsage;
      return 2;
    }
  }
  const config::PriceCatalogue& c = config::builtin_price_catalogue();
  if (!model.empty() && !c.find(model)) {
    err << "frugal prices: model '" << model << "' is not in the built-in price catalogue (version " << c.version
        << "); price it in a policy's `prices:`\n";
    return 1;
  }
  out << (json ? render_prices_json(model) : render_prices_table(model));
  return 0;
}

}  // namespace frugal::gateway
