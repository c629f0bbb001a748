#include "config/price_catalogue.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>

#include "config/yaml_reader.h"

namespace frugal::config {

// Defined in the file CMake generates from config/prices/catalogue.yaml.
extern const char* const kBuiltinPriceCatalogueYaml;

namespace {

std::string where_of(const YamlNode& n, const std::string& source) {
  const YAML::Mark m = n.raw() ? n.raw().Mark() : YAML::Mark::null_mark();
  std::string s = source;
  if (m.line >= 0) s += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  if (!n.path().empty()) s += ": key '" + n.path() + "'";
  return s;
}

int64_t usd(const YamlNode& n) {
  auto r = parse_usd_micros(n.as_string());
  if (!r) n.fail(r.error().message);
  return *r;
}

CatalogueModel model(const std::string& provider, const std::string& name, const YamlNode& n,
                     const std::string& source) {
  CatalogueModel m;
  m.provider = provider;
  PriceSpec& p = m.price;
  p.model = name;
  p.where = where_of(n, source);
  if (!n.is_map()) n.fail("expected a mapping of prices (USD per 1M tokens)");
  n.allow_keys({"input", "cached_input", "cache_write_5m", "cache_write_1h", "output", "checked", "aliases"});
  auto opt = [&](const char* k) -> std::optional<int64_t> {
    auto c = n.child(k);
    if (!c) return std::nullopt;
    return usd(*c);
  };
  p.input = opt("input");
  p.cached_input = opt("cached_input");
  p.cache_write_5m = opt("cache_write_5m");
  p.cache_write_1h = opt("cache_write_1h");
  p.output = opt("output");
  if (!p.input || !p.output) n.fail("expected both 'input' and 'output' prices (USD per 1M tokens)");
  m.checked = n.required("checked").as_string();
  if (m.checked != "official" && m.checked != "secondary")
    n.required("checked").fail("expected official or secondary, got " + n.required("checked").shown());
  if (auto a = n.child("aliases")) {
    if (!a->is_sequence()) a->fail("expected a list of model names");
    for (const auto& it : a->items()) m.aliases.push_back(it.as_string());
  }
  return m;
}

PriceCatalogue load(const YamlNode& root, const std::string& source) {
  if (root.is_null() || !root.is_map()) root.fail("expected a price catalogue mapping");
  root.allow_keys({"version", "date", "providers"});
  PriceCatalogue c;
  c.version = root.required("version").as_string();
  if (c.version.empty()) root.required("version").fail("expected a non-empty version");
  c.date = root.required("date").as_string();
  const std::string& d = c.date;
  const bool date_ok = d.size() == 10 && d[4] == '-' && d[7] == '-' &&
                       std::all_of(d.begin(), d.end(), [](char ch) { return ch == '-' || (ch >= '0' && ch <= '9'); });
  if (!date_ok) root.required("date").fail("expected a date YYYY-MM-DD");
  const YamlNode providers = root.required("providers");
  if (!providers.is_map()) providers.fail("expected a mapping of providers");
  std::map<std::string, std::string> seen;  // name or alias -> where first listed
  for (const auto& [pname, pn] : providers.entries()) {
    pn.allow_keys({"source", "batch_discount_percent", "models"});
    CatalogueProvider p;
    p.name = pname;
    p.source = pn.required("source").as_string();
    p.batch_discount_percent = static_cast<int>(pn.get_int("batch_discount_percent", 0, 0, 100));
    c.providers.push_back(p);
    const YamlNode models = pn.required("models");
    if (!models.is_map()) models.fail("expected a mapping of model names to prices");
    for (const auto& [mname, mn] : models.entries()) {
      CatalogueModel m = model(pname, mname, mn, source);
      std::vector<std::string> names{mname};
      names.insert(names.end(), m.aliases.begin(), m.aliases.end());
      for (const auto& name : names) {
        auto [it, fresh] = seen.emplace(name, m.price.where);
        if (!fresh) mn.fail("model '" + name + "' is already listed at " + it->second);
      }
      c.models.push_back(std::move(m));
    }
  }
  return c;
}

}  // namespace

const CatalogueModel* PriceCatalogue::find(const std::string& name) const {
  for (const auto& m : models) {
    if (m.price.model == name) return &m;
    for (const auto& a : m.aliases)
      if (a == name) return &m;
  }
  return nullptr;
}

Result<PriceCatalogue> load_price_catalogue_text(const std::string& text, const std::string& source) {
  const EnvLookup no_env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  try {
    const YAML::Node doc = parse_yaml(text, source);
    return load(YamlNode(doc, "", &source, &no_env), source);
  } catch (const ConfigException& e) {
    return make_error(ErrorKind::kInvalidRequest, e.what());
  } catch (const YAML::Exception& e) {
    return make_error(ErrorKind::kInvalidRequest, source + ": " + e.what());
  }
}

const std::string& builtin_price_catalogue_text() {
  static const std::string text(kBuiltinPriceCatalogueYaml);
  return text;
}

const PriceCatalogue& builtin_price_catalogue() {
  static const PriceCatalogue catalogue = [] {
    auto c = load_price_catalogue_text(builtin_price_catalogue_text(), "built-in price catalogue");
    if (!c) {
      std::cerr << "frugal: " << c.error().message << "\n";
      std::abort();
    }
    return std::move(c).value();
  }();
  return catalogue;
}

}  // namespace frugal::config
