#include <doctest/doctest.h>

#include "policies/prices.h"
#include "test_util.h"

using namespace frugal;
using namespace frugal::policies;

namespace {
Usage usage(int64_t in, int64_t cached, int64_t cw5, int64_t cw1, int64_t out) {
  Usage u;
  u.input_tokens = in;
  u.cached_input_tokens = cached;
  u.cache_write_5m_tokens = cw5;
  u.cache_write_1h_tokens = cw1;
  u.output_tokens = out;
  u.reported = true;
  return u;
}
}  // namespace

TEST_CASE("token classes are priced separately, exactly") {
  auto pol = testing::example_policy();
  const PriceTable& t = pol->prices();
  // claude-sonnet-4-5: 3.00 in, 0.30 cached, 3.75 cw5m, 6.00 cw1h, 15.00 out (per 1M)
  auto c = t.cost_of("claude-sonnet-4-5", usage(10'000, 6'000, 2'000, 1'000, 500), 0);
  REQUIRE(c.ok());
  CHECK(c->uncached_input == Money::from_micros(3'000));  // (10000-6000-2000-1000) × 3
  CHECK(c->cached_input == Money::from_micros(1'800));    // 6000 × 0.30
  CHECK(c->cache_write == Money::from_micros(13'500));    // 2000 × 3.75 + 1000 × 6.00
  CHECK(c->output == Money::from_micros(7'500));          // 500 × 15
  CHECK(c->gpu == Money::from_micros(0));
  CHECK(c->total == Money::from_micros(25'800));
  // Baseline at gpt-4o treats every prompt token as plain input: 10000 × 2.5 + 500 × 10.
  CHECK(*t.baseline_of("gpt-4o", usage(10'000, 6'000, 2'000, 1'000, 500)) == Money::from_micros(30'000));
}

TEST_CASE("fallbacks for absent price classes and exact cost per class") {
  auto pol = testing::compile_text(R"(
prices:
  m: { input: 0.15, output: 0.60 }
  w: { input: 1, cache_write_5m: 2, output: 1 }
request_types:
  - name: chat
)");
  const PriceTable& t = pol->prices();
  // No cached_input price: cached tokens cost as input. 7 × 0.15 = 1.05 µ$, 3 × 0.15 =
  // 0.45 µ$, exactly (the micro-dollar rounding per class booked 1 and 0).
  auto c = t.cost_of("m", usage(10, 3, 0, 0, 0), 0);
  CHECK(c->uncached_input == Money::from_picos(1'050'000));
  CHECK(c->cached_input == Money::from_picos(450'000));
  CHECK(c->total.to_usd_string() == "0.0000015");
  CHECK(t.cost_of("m", usage(10, 0, 0, 0, 0), 0)->total == Money::from_picos(1'500'000));  // was rounded to 2 µ$
  // The issue's case: 12 input + 6 output = 1.8 + 3.6 µ$ = $0.0000054 (was 2 + 4 = 6 µ$).
  CHECK(t.cost_of("m", usage(12, 0, 0, 0, 6), 0)->total.to_usd_string() == "0.0000054");
  CHECK(t.baseline_of("m", usage(12, 0, 0, 0, 6))->picos() == 5'400'000);
  CHECK(t.cost_of("m", usage(0, 0, 0, 0, 1'000'000), 0)->total == Money::from_micros(600'000));
  // cache_write_1h falls back to cache_write_5m.
  CHECK(t.cost_of("w", usage(300, 0, 100, 200, 0), 0)->cache_write == Money::from_micros(600));
  // Inconsistent usage (more sub-class tokens than input) never goes negative.
  CHECK(t.cost_of("m", usage(0, 10, 0, 0, 0), 0)->uncached_input == Money::from_micros(0));
}

TEST_CASE("prices with six decimals are kept exactly, down to one picodollar per token") {
  auto pol = testing::compile_text(R"(
prices:
  tiny: { input: 0.000001, output: 0.123456 }
request_types:
  - name: chat
)");
  const PriceTable& t = pol->prices();
  auto c = t.cost_of("tiny", usage(1, 0, 0, 0, 1), 0);
  CHECK(c->uncached_input == Money::from_picos(1));
  CHECK(c->output == Money::from_picos(123'456));
  CHECK(c->total.to_usd_string() == "0.000000123457");
  CHECK(t.cost_of("tiny", usage(1'000'000, 0, 0, 0, 0), 0)->total.to_usd_string() == "0.000001");
}

TEST_CASE("GPU-hour pricing from measured busy time") {
  auto pol = testing::example_policy();
  const PriceTable& t = pol->prices();
  // $2.10/h for 1.5 s = 2'100'000 × 1.5e6 / 3.6e9 = 875 micro-dollars; tokens are free.
  auto c = t.cost_of("local/small-q4", usage(100'000, 0, 0, 0, 100'000), 1'500'000);
  CHECK(c->gpu == Money::from_micros(875));
  CHECK(c->total == Money::from_micros(875));
  // 1 µs: 2'100'000 / 3600 = 583.3 picodollars, rounded half up to the picodollar (the
  // one rounding in pricing; it was 0 when rounded to the micro-dollar).
  CHECK(t.cost_of("local/small-q4", usage(1, 0, 0, 0, 1), 1)->total == Money::from_picos(583));
  CHECK(t.cost_of("local/small-q4", usage(1, 0, 0, 0, 1), 6)->total == Money::from_picos(3'500));
  CHECK(t.cost_of("local/small-q4", {}, 3'600'000'000)->total == Money::from_micros(2'100'000));
}

TEST_CASE("unknown model is an error, not a zero") {
  auto pol = testing::example_policy();
  auto c = pol->prices().cost_of("nope", {}, 0);
  CHECK(!c.ok());
  CHECK(c.error().kind == ErrorKind::kNotFound);
  CHECK(!pol->prices().baseline_of("nope", {}).ok());
}
