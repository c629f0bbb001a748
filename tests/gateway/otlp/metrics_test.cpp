// metric_observations(trace) and their aggregation into cumulative OTLP points.
#include <doctest/doctest.h>

#include <algorithm>

#include "gateway/otlp/metrics.h"
#include "trace_fixtures.h"

using namespace frugal;
using namespace frugal::otlp;
using namespace frugal::otlp::testing;

namespace {

std::string str_attr(const Attributes& a, std::string_view key) {
  const AttrValue* v = find_attribute(a, key);
  const auto s = v ? string_value(*v) : std::nullopt;
  return s ? std::string(*s) : std::string("<none>");
}

const MetricData& metric(const std::vector<MetricData>& ms, std::string_view name) {
  const auto it = std::find_if(ms.begin(), ms.end(), [&](const MetricData& m) { return m.name == name; });
  REQUIRE_MESSAGE(it != ms.end(), "no metric ", name);
  return *it;
}

}  // namespace

TEST_CASE("otlp metrics: an escalation's tokens by tier and type, its cost, baseline and savings") {
  const router::RequestTrace t = escalated();  // the observations borrow its strings
  const auto obs = metric_observations(t);
  int64_t input = 0, output = 0, cache_read = 0, cache_write = 0;
  for (const Observation& o : obs) {
    if (o.instrument != Instrument::kTokenUsage) continue;
    const std::string type = str_attr(o.attributes, "gen_ai.token.type");
    const auto n = static_cast<int64_t>(o.value);
    if (type == "input") input += n;
    else if (type == "output") output += n;
    else if (type == "cache_read") cache_read += n;
    else if (type == "cache_write") cache_write += n;
    CHECK(str_attr(o.attributes, "frugal.route") == "qa");
  }
  CHECK(input == 10 + 10 + 100);  // every tier and the verifier consumed tokens
  CHECK(output == 5 + 5 + 50);
  CHECK(cache_read == 30);
  CHECK(cache_write == 7);
  const auto money = [&](Instrument i) {
    const auto it = std::find_if(obs.begin(), obs.end(), [&](const Observation& o) { return o.instrument == i; });
    REQUIRE(it != obs.end());
    CHECK(str_attr(it->attributes, "gen_ai.response.model") == "large");
    CHECK(str_attr(it->attributes, "frugal.team") == "search");
    return it->money;
  };
  CHECK(money(Instrument::kCost) == Money::from_micros(44));
  CHECK(money(Instrument::kBaseline) == Money::from_micros(50));
  CHECK(money(Instrument::kSavings) == Money::from_micros(6));
  const auto ttft = std::find_if(obs.begin(), obs.end(),
                                 [](const Observation& o) { return o.instrument == Instrument::kTimeToFirstToken; });
  REQUIRE(ttft != obs.end());
  CHECK(ttft->value == doctest::Approx(0.0007));  // the live tier's first byte, 700 µs after arrival
}

TEST_CASE("otlp metrics: a cache hit books no tokens and no cost, under the (cache) model") {
  const router::RequestTrace t = cache_hit();
  const auto obs = metric_observations(t);
  for (const Observation& o : obs) CHECK(o.instrument != Instrument::kTokenUsage);
  const auto cost = std::find_if(obs.begin(), obs.end(), [](const Observation& o) { return o.instrument == Instrument::kCost; });
  REQUIRE(cost != obs.end());
  CHECK(cost->money == Money{});
  CHECK(str_attr(cost->attributes, "gen_ai.response.model") == "(cache)");
}

TEST_CASE("otlp metrics: aggregation is cumulative per attribute set, histograms bucket by the upper bound") {
  MetricsAggregator agg(5);
  agg.add(escalated());
  agg.add(escalated());
  agg.add(cache_hit());
  const auto ms = agg.collect(99, ExporterCounters{7, 3});
  const MetricData& cost = metric(ms, "frugal.cost.usd");
  CHECK(!cost.histogram);
  CHECK(cost.monotonic);
  CHECK(cost.start_unix_ns == 5);
  CHECK(cost.time_unix_ns == 99);
  REQUIRE(cost.numbers.size() == 2);  // the escalations' series and the hit's
  double total = 0;
  for (const auto& p : cost.numbers) total += p.as_double;
  CHECK(total == 0.000088);
  CHECK(!metric(ms, "frugal.savings.usd").monotonic);

  const MetricData& requests = metric(ms, "frugal.requests");
  int64_t n = 0;
  for (const auto& p : requests.numbers) {
    CHECK(p.is_int);
    n += p.as_int;
  }
  CHECK(n == 3);

  const MetricData& tokens = metric(ms, "gen_ai.client.token.usage");
  CHECK(tokens.histogram);
  for (const auto& p : tokens.histograms) {
    if (str_attr(p.attributes, "gen_ai.token.type") != "input" ||
        str_attr(p.attributes, "gen_ai.request.model") != "large-up")
      continue;
    CHECK(p.count == 2);
    CHECK(p.sum == 200);
    CHECK(p.min == 100);
    CHECK(p.max == 100);
    REQUIRE(p.bucket_counts.size() == tokens.bounds.size() + 1);
    // 100 falls in (64, 256]: bucket 4 of bounds 1, 4, 16, 64, 256, ... (bucket 0 is (-inf, 1])
    CHECK(p.bucket_counts[4] == 2);
  }
  CHECK(metric(ms, "frugal.otlp.spans.exported").numbers.at(0).as_int == 7);
  CHECK(metric(ms, "frugal.otlp.spans.dropped").numbers.at(0).as_int == 3);
}

TEST_CASE("otlp metrics: past the series limit new attribute sets fold into the overflow series") {
  MetricsAggregator agg(0, 2);
  for (int i = 0; i < 5; ++i) {
    router::RequestTrace t = cache_hit();
    t.route = "route-" + std::to_string(i);
    agg.add(t);
  }
  const auto ms = agg.collect(1, {});
  const MetricData& requests = metric(ms, "frugal.requests");
  REQUIRE(requests.numbers.size() == 3);
  int overflow = 0;
  for (const auto& p : requests.numbers) {
    const AttrValue* v = find_attribute(p.attributes, "otel.metric.overflow");
    if (v) {
      ++overflow;
      CHECK(p.as_int == 3);
    }
  }
  CHECK(overflow == 1);
}
