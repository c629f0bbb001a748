// The built-in price catalogue (config/prices/catalogue.yaml, embedded at build time) and
// the price table's precedence: the policy's own prices, then the catalogue by name or
// alias, then the catalogue price of a tier's upstream model; else price unknown.
#include <doctest/doctest.h>

#include "config/price_catalogue.h"
#include "policies/prices.h"
#include "test_util.h"

using namespace frugal;
using namespace frugal::policies;

namespace {

Usage tokens(int64_t in, int64_t cached, int64_t cw5, int64_t cw1, int64_t out) {
  Usage u;
  u.input_tokens = in;
  u.cached_input_tokens = cached;
  u.cache_write_5m_tokens = cw5;
  u.cache_write_1h_tokens = cw1;
  u.output_tokens = out;
  u.reported = true;
  return u;
}

std::string load_error(const std::string& text) {
  auto c = config::load_price_catalogue_text(text, "cat.yaml");
  REQUIRE_FALSE(c.ok());
  return c.error().message;
}

}  // namespace

TEST_CASE("the embedded price catalogue loads, with a version, a date and a source per provider") {
  const config::PriceCatalogue& c = config::builtin_price_catalogue();
  CHECK(!c.version.empty());
  CHECK(c.date.size() == 10);
  REQUIRE(c.providers.size() == 2);
  for (const auto& p : c.providers) {
    CHECK(!p.source.empty());
    CHECK(p.batch_discount_percent == 50);
  }
  CHECK(c.models.size() >= 20);
  // The text shipped is the file in the repository, byte for byte.
  CHECK(config::builtin_price_catalogue_text().find("version: \"" + c.version + "\"") != std::string::npos);
  for (const auto& m : c.models) {
    CAPTURE(m.price.model);
    CHECK((m.provider == "openai" || m.provider == "anthropic"));
    CHECK((m.checked == "official" || m.checked == "secondary"));
    CHECK(m.price.input.has_value());
    CHECK(m.price.output.has_value());
  }
}

TEST_CASE("catalogue prices: Anthropic cache writes 5m and 1h, OpenAI cached input, dated aliases") {
  const PriceTable& t = builtin_prices();
  CHECK(t.catalogue_version() == config::builtin_price_catalogue().version);
  const ModelPrice* sonnet = t.find("claude-sonnet-4-5");
  REQUIRE(sonnet);
  CHECK(sonnet->source == PriceSource::kCatalogue);
  CHECK(sonnet->input == 3'000'000);
  CHECK(sonnet->cache_write_5m == 3'750'000);
  CHECK(sonnet->cache_write_1h == 6'000'000);
  CHECK(sonnet->cached_input == 300'000);
  CHECK(sonnet->output == 15'000'000);
  CHECK(t.find("claude-sonnet-4-5-20250929") != nullptr);  // a dated alias, same prices
  CHECK(t.find("claude-sonnet-4-5-20250929")->output == 15'000'000);
  const ModelPrice* mini = t.find("gpt-4o-mini");
  REQUIRE(mini);
  CHECK(mini->input == 150'000);
  CHECK(mini->cached_input == 75'000);
  CHECK(mini->output == 600'000);
  CHECK(mini->cache_write_5m == mini->input);  // no cache-write class: priced as input
  CHECK(t.find("gpt-4o-2024-05-13") == nullptr);  // a snapshot with other prices is no alias
  // 12 in + 6 out tokens of gpt-4o-mini, exactly: $0.0000054.
  const PricedCost c = t.price("gpt-4o-mini", {}, tokens(12, 0, 0, 0, 6), 0);
  CHECK(c.source == PriceSource::kCatalogue);
  CHECK(c.cost.total.to_usd_string() == "0.0000054");
  // Every Anthropic token class: 10,000 in (6,000 cached, 2,000 cw5m, 1,000 cw1h) + 500 out.
  const PricedCost a = t.price("claude-sonnet-4-5", {}, tokens(10'000, 6'000, 2'000, 1'000, 500), 0);
  CHECK(a.cost.uncached_input == Money::from_micros(3'000));
  CHECK(a.cost.cached_input == Money::from_micros(1'800));
  CHECK(a.cost.cache_write == Money::from_micros(7'500 + 6'000));
  CHECK(a.cost.output == Money::from_micros(7'500));
}

TEST_CASE("a policy's own price wins over the catalogue, the catalogue fills the rest") {
  auto pol = testing::compile_text(R"(request_types:
  - name: chat
routes:
  chat:
    cascade:
      - model: gpt-4o-mini
      - model: claude-haiku-4-5
prices:
  gpt-4o-mini: { input: 1.00, output: 2.00 }
)");
  const PriceTable& t = pol->prices();
  const ModelPrice* own = t.find("gpt-4o-mini");
  REQUIRE(own);
  CHECK(own->source == PriceSource::kPolicy);
  CHECK(own->input == 1'000'000);
  const ModelPrice* cat = t.find("claude-haiku-4-5");
  REQUIRE(cat);
  CHECK(cat->source == PriceSource::kCatalogue);
  CHECK(cat->output == 5'000'000);
  CHECK(t.catalogue_version() == builtin_prices().catalogue_version());
  CHECK(t.price("gpt-4o-mini", {}, tokens(1'000'000, 0, 0, 0, 0), 0).cost.total == Money::from_micros(1'000'000));
}

TEST_CASE("a tier priced by its upstream model, unknown models are unknown, never a silent zero") {
  const PriceTable& t = builtin_prices();
  // An alias `fast` whose target is gpt-4o-mini: priced as gpt-4o-mini.
  const PricedCost via = t.price("fast", "gpt-4o-mini", tokens(1'000'000, 0, 0, 0, 0), 0);
  CHECK(via.source == PriceSource::kCatalogue);
  CHECK(via.cost.total == Money::from_micros(150'000));
  const PricedCost unknown = t.price("my-finetune", "my-finetune", tokens(10, 0, 0, 0, 5), 0);
  CHECK(unknown.source == PriceSource::kUnknown);
  CHECK(unknown.cost.total == Money{});
  // No tokens used (a failed attempt): nothing to price, not unknown.
  CHECK(t.price("my-finetune", {}, Usage{}, 0).source == PriceSource::kNone);
  CHECK(std::string(price_source_name(PriceSource::kUnknown)) == "unknown");
}

TEST_CASE("a policy may route to catalogue models without pricing them, but not to unknown ones") {
  auto ok = config::load_policy_text(R"(request_types:
  - name: chat
routes:
  chat:
    reference_model: gpt-4o
    cascade:
      - model: gpt-4o-mini
)",
                                     "p.yaml");
  CHECK_MESSAGE(ok.ok(), (ok.ok() ? "" : ok.error().message));
  auto bad = config::load_policy_text(R"(request_types:
  - name: chat
routes:
  chat:
    cascade:
      - model: gpt-4o-mini
      - model: my-finetune
)",
                                      "p.yaml");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("unknown model 'my-finetune'") != std::string::npos);
  CHECK(bad.error().message.find("built-in price catalogue") != std::string::npos);
}

TEST_CASE("a malformed catalogue is refused with the file, line and key") {
  CHECK(load_error("version: \"1\"\ndate: \"2026-12-06\"\nproviders:\n  openai:\n    source: s\n    models:\n"
                   "      m: { input: 1.1234567, output: 1, checked: official }\n")
            .find("cat.yaml:7:") != std::string::npos);
  CHECK(load_error("version: \"1\"\ndate: \"2026-12-06\"\nproviders:\n  openai:\n    source: s\n    models:\n"
                   "      m: { input: 1, output: 1, checked: official }\n"
                   "      n: { input: 1, output: 1, checked: official, aliases: [m] }\n")
            .find("model 'm' is already listed") != std::string::npos);
  CHECK(load_error("version: \"1\"\ndate: \"Dec 6\"\nproviders: {}\n").find("YYYY-MM-DD") != std::string::npos);
  CHECK(load_error("version: \"1\"\ndate: \"2026-12-06\"\nproviders:\n  openai:\n    source: s\n    models:\n"
                   "      m: { input: 1, output: 1, checked: maybe }\n")
            .find("official or secondary") != std::string::npos);
}
