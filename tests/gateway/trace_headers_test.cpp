// Response headers and trailers as pure functions of hand-built request traces.
#include <doctest/doctest.h>

#include <map>

#include "gateway/trace_headers.h"

using namespace frugal;
using namespace frugal::router;
using frugal::gateway::response_headers;
using frugal::gateway::trailers;

namespace {

std::map<std::string, std::string> as_map(const frugal::gateway::HeaderList& h) {
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : h) {
    CHECK_MESSAGE(m.count(std::string(k)) == 0, "header repeated: " << k);
    m[std::string(k)] = v;
  }
  return m;
}

RequestTrace classified() {
  RequestTrace t;
  t.classified = true;
  t.request_type = "qa";
  t.route = "qa";
  t.routed = true;
  return t;
}

TierAttempt tier(std::string model, TierStatus s, int64_t micros) {
  TierAttempt a;
  a.model = std::move(model);
  a.status = s;
  a.cost = Money::from_micros(micros);
  a.transport.push_back(AttemptRecord{"p", "m", 200, "", 1});
  return a;
}

}  // namespace

TEST_CASE("response_headers: nothing for a request refused before classification") {
  RequestTrace t;
  CHECK(response_headers(t).empty());
  CHECK(trailers(t).empty());
}

TEST_CASE("response_headers: a budget denial says its type, route and when to retry, and has no cost") {
  RequestTrace t = classified();
  t.budget.checked = true;
  t.budget.allowed = false;
  t.budget.message = "team 'a' spent $1.00 of $1.00 this day";
  t.budget.retry_after_s = 3600;
  const auto h = as_map(response_headers(t));
  CHECK(h.at("x-frugal-request-type") == "qa");
  CHECK(h.at("x-frugal-route") == "qa");
  CHECK(h.at("retry-after") == "3600");
  CHECK(h.count("x-frugal-cost-usd") == 0);
  CHECK(h.count("x-frugal-budget-warning") == 0);
  CHECK(trailers(t).empty());
}

TEST_CASE("response_headers: an accepted buffered tier has final cost and savings before the body goes out") {
  RequestTrace t = classified();
  t.budget.soft_exceeded = true;
  t.budget.message = "soft limit passed";
  t.cache.outcome = CacheOutcome::kMiss;
  t.dispatched = true;
  t.tiers.push_back(tier("small", TierStatus::kRejected, 2));
  t.tiers.back().transport.push_back(AttemptRecord{"p", "m", 503, "", 1});
  t.tiers.push_back(tier("mid", TierStatus::kAccepted, 5));
  t.answer_tier = 1;
  t.answer_provider = "openai";
  t.answer_upstream_model = "gpt-4o-mini";
  t.baseline = Money::from_micros(30);
  t.baseline_known = true;
  const auto h = as_map(response_headers(t));
  CHECK(h.at("x-frugal-budget-warning") == "soft limit passed");
  CHECK(h.at("x-frugal-cache") == "miss");
  CHECK(h.at("x-frugal-provider") == "openai");
  CHECK(h.at("x-frugal-model") == "gpt-4o-mini");
  CHECK(h.at("x-frugal-attempts") == "3");
  CHECK(h.at("x-frugal-tier") == "2");
  CHECK(h.at("x-frugal-cost-usd") == "0.000007");
  CHECK(h.at("x-frugal-cost-final") == "true");
  CHECK(h.at("x-frugal-savings-usd") == "0.000023");
}

TEST_CASE("response_headers: a live stream's head has the cost so far, not final, and its trailers the final figures") {
  RequestTrace t = classified();
  t.cache.outcome = CacheOutcome::kBypass;
  t.dispatched = true;
  t.tiers.push_back(tier("small", TierStatus::kRejected, 2));
  t.tiers.push_back(tier("large", TierStatus::kError, 0));  // the live tier, as dispatched
  t.answer_tier = 1;
  t.answer_live = true;
  t.answer_provider = "anthropic";
  t.answer_upstream_model = "claude";
  auto h = as_map(response_headers(t));
  CHECK(h.at("x-frugal-cache") == "bypass");
  CHECK(h.at("x-frugal-attempts") == "2");  // the live tier's own attempt included
  CHECK(h.at("x-frugal-cost-usd") == "0.000002");
  CHECK(h.at("x-frugal-cost-final") == "false");
  CHECK(h.count("x-frugal-savings-usd") == 0);

  // The answer ends: the live tier is priced and the baseline known.
  t.tiers.back().status = TierStatus::kAccepted;
  t.tiers.back().cost = Money::from_micros(40);
  t.baseline = Money::from_micros(40);
  t.baseline_known = true;
  t.finished = true;
  const auto tr = trailers(t);
  REQUIRE(tr.size() == 2);
  CHECK(tr[0] == std::pair<std::string, std::string>{"x-frugal-cost-usd", "0.000042"});
  CHECK(tr[1] == std::pair<std::string, std::string>{"x-frugal-savings-usd", "-0.000002"});
  h = as_map(response_headers(t));
  CHECK(h.at("x-frugal-cost-final") == "true");
}

TEST_CASE("response_headers: a cache hit names the stored answer's model, costs nothing and saves its baseline") {
  RequestTrace t = classified();
  t.cache.outcome = CacheOutcome::kHit;
  t.cache.model = "gpt-4o";
  t.baseline = Money::from_micros(123);
  t.baseline_known = true;
  const auto h = as_map(response_headers(t));
  CHECK(h.at("x-frugal-cache") == "hit");
  CHECK(h.at("x-frugal-model") == "gpt-4o");
  CHECK(h.count("x-frugal-provider") == 0);
  CHECK(h.count("x-frugal-tier") == 0);
  CHECK(h.at("x-frugal-cost-usd") == "0.000000");
  CHECK(h.at("x-frugal-cost-final") == "true");
  CHECK(h.at("x-frugal-savings-usd") == "0.000123");
}

TEST_CASE("response_headers: an unknown price reads unknown, never $0, and the shaping applied is named") {
  RequestTrace t = classified();
  t.dispatched = true;
  t.answer_tier = 0;
  t.tiers.push_back(tier("mystery", TierStatus::kAccepted, 0));
  t.tiers.back().usage.input_tokens = 10;
  t.tiers.back().price = policies::PriceSource::kUnknown;
  t.baseline_known = true;
  t.finished = true;
  t.shaping.applied = kShapedMaxTokensCap | kShapedStop;
  t.shaping.max_tokens = 128;
  CHECK(t.price_unknown());
  auto h = as_map(response_headers(t));
  CHECK(h.at("x-frugal-cost-usd") == "unknown");
  CHECK(h.at("x-frugal-savings-usd") == "unknown");
  CHECK(h.at("x-frugal-price") == "unknown");
  CHECK(h.at("x-frugal-shaping") == "max_tokens_cap,stop");
  const auto tr = trailers(t);
  REQUIRE(tr.size() == 2);
  CHECK(tr[0].second == "unknown");
  const LedgerRecord row = ledger_record(t);
  CHECK(row.price_unknown);
  CHECK(row.tiers.at(0).price == policies::PriceSource::kUnknown);
  CHECK(row.shaping.max_tokens == 128);
  CHECK(row.catalogue_version.empty());

  // Priced by the catalogue: the figures as usual, the row names the catalogue version.
  t.tiers.back().price = policies::PriceSource::kCatalogue;
  t.tiers.back().cost = Money::from_micros(3);
  t.catalogue_version = "2026.12.06";
  t.baseline = Money::from_micros(3);
  t.baseline_price = policies::PriceSource::kCatalogue;
  h = as_map(response_headers(t));
  CHECK(h.at("x-frugal-cost-usd") == "0.000003");
  CHECK(h.count("x-frugal-price") == 0);
  CHECK(ledger_record(t).catalogue_version == "2026.12.06");
  CHECK_FALSE(ledger_record(t).price_unknown);
}
