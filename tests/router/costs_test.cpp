#include <doctest/doctest.h>
#include <simdjson.h>

#include <limits>
#include <string>

#include "router/costs.h"

using namespace frugal;
using namespace frugal::router;

namespace {
CostReport report() {
  CostReport r;
  r.from_us = 0;
  r.to_us = 3'600'000'000;
  r.group_by = {GroupBy::kRequestType, GroupBy::kModel};
  CostTotals a;
  a.requests = 3;
  a.attempts = 4;
  a.rejected = 1;
  a.input_tokens = 1'234;
  a.output_tokens = 56;
  a.cost = Money::from_micros(1'500);
  a.baseline = Money::from_micros(4'000);
  CostTotals b;
  b.requests = 1;
  b.attempts = 1;
  b.cost = Money::from_micros(2'000'001);
  b.baseline = Money::from_micros(1'000'000);
  r.rows = {{{"classify", "gpt-4o-mini"}, a}, {{"extract", "gpt-4o"}, b}};
  r.totals = a;
  r.totals += b;
  return r;
}
}  // namespace

TEST_CASE("group_by parsing") {
  auto g = parse_group_by("request_type, model,request_type");
  REQUIRE(g.ok());
  CHECK(*g == std::vector<GroupBy>{GroupBy::kRequestType, GroupBy::kModel});
  CHECK(parse_group_by("")->empty());
  auto bad = parse_group_by("model,colour");
  REQUIRE(!bad.ok());
  CHECK(bad.error().param == "group_by");
  CHECK(bad.error().message.find("'colour'") != std::string::npos);
}

TEST_CASE("JSON rendering is valid JSON with exact money") {
  const std::string json = render_costs_json(report());
  simdjson::dom::parser p;
  simdjson::dom::element root;
  REQUIRE(!p.parse(json).get(root));
  CHECK(std::string_view(root["from"]) == "1970-01-01T00:00:00Z");
  CHECK(std::string_view(root["to"]) == "1970-01-01T01:00:00Z");
  CHECK(simdjson::dom::array(root["rows"]).size() == 2);
  simdjson::dom::element row = root["rows"].at(1);
  CHECK(std::string_view(row["request_type"]) == "extract");
  CHECK(std::string_view(row["model"]) == "gpt-4o");
  CHECK(std::string_view(row["cost_usd"]) == "2.000001");
  CHECK(std::string_view(row["savings_usd"]) == "-1.000001");
  CHECK(int64_t(row["savings_micros"]) == -1'000'001);
  CHECK(int64_t(root["totals"]["requests"]) == 4);
  CHECK(std::string_view(root["totals"]["cost_usd"]) == "2.001501");
}

TEST_CASE("table rendering aligns columns and ends with a TOTAL line") {
  const std::string t = render_costs_table(report());
  CHECK(t ==
        "request_type  model        requests  attempts  rejected  errors  cache_hits  in_tokens  "
        "out_tokens  cost_usd  baseline_usd  savings_usd\n"
        "classify      gpt-4o-mini         3         4         1       0           0       1234  "
        "        56  0.001500      0.004000     0.002500\n"
        "extract       gpt-4o              1         1         0       0           0          0  "
        "         0  2.000001      1.000000    -1.000001\n"
        "TOTAL                             4         5         1       0           0       1234  "
        "        56  2.001501      1.004000    -0.997501\n");
  CostReport ungrouped;
  ungrouped.totals.requests = 2;
  const std::string u = render_costs_table(ungrouped);
  CHECK(u.find("TOTAL") == 0 + u.find('\n') + 1);
}

TEST_CASE("costs render sub-micro-dollar and 128-bit sums exactly: decimals, picodollar strings, rounded micros") {
  CostReport r;
  r.to_us = 3'600'000'000;
  CostTotals t;
  t.requests = 1;
  t.cost = Money::from_picos(5'400'000);  // $0.0000054
  t.baseline = Money::from_picos(90'000'000);
  // A sum past 64 bits of picodollars (about $9.2M): still exact.
  CostTotals big;
  big.cost = Money::from_picos(static_cast<int128_t>(std::numeric_limits<int64_t>::max()) * 3);
  r.rows = {{{}, t}};
  r.totals = t;
  r.totals += big;
  const std::string json = render_costs_json(r);
  simdjson::dom::parser p;
  simdjson::dom::element root;
  REQUIRE(!p.parse(json).get(root));
  simdjson::dom::element row = root["rows"].at(0);
  CHECK(std::string_view(row["cost_usd"]) == "0.0000054");
  CHECK(std::string_view(row["cost_picos"]) == "5400000");
  CHECK(std::string_view(row["savings_usd"]) == "0.0000846");
  CHECK(std::string_view(row["savings_picos"]) == "84600000");
  CHECK(int64_t(row["cost_micros"]) == 5);  // rounded half away from zero
  CHECK(int64_t(row["savings_micros"]) == 85);
  CHECK(std::string_view(root["totals"]["cost_picos"]) == "27670116110569727421");  // 3 × (2^63 − 1) + 5.4e6
  CHECK(std::string_view(root["totals"]["cost_usd"]) == "27670116.110569727421");
  const std::string table = render_costs_table(r);
  CHECK(table.find(" 0.0000054 ") != std::string::npos);
  CHECK(table.find("27670116.110569727421") != std::string::npos);
}
