// The request record's pure outputs, on traces built by hand: the ledger row and the
// trace id. (The response headers and trailers: tests/gateway/trace_headers_test.cpp.)
#include <doctest/doctest.h>

#include "router/request_trace.h"

using namespace frugal;
using namespace frugal::router;

namespace {

Usage usage(int64_t in, int64_t out) {
  Usage u;
  u.input_tokens = in;
  u.output_tokens = out;
  u.reported = true;
  return u;
}

TierAttempt tier(std::string model, TierStatus status, int64_t cost_micros, int64_t started, int64_t first,
                 int64_t last) {
  TierAttempt t;
  t.model = std::move(model);
  t.provider = "p";
  t.upstream_model = t.model + "-up";
  t.status = status;
  t.cost = Money::from_micros(cost_micros);
  t.usage = usage(10, 5);
  t.started_us = started;
  t.first_byte_us = first;
  t.last_byte_us = last;
  t.transport.push_back(AttemptRecord{"p", t.upstream_model, 200, "", last - started});
  return t;
}

// An escalation: a rejected cheap tier, its verifier call, the live last tier answering.
RequestTrace escalated() {
  RequestTrace t;
  t.request_id = "req-1";
  t.wall_start_us = 1'700'000'000'000'000;
  t.mono_start_us = 1000;
  t.dialect = Dialect::kAnthropic;
  t.key_id = "k1";
  t.team = "search";
  t.classified = true;
  t.request_type = "qa";
  t.route = "qa";
  t.routed = true;
  t.cache.outcome = CacheOutcome::kMiss;
  t.dispatched = true;
  t.tiers.push_back(tier("small", TierStatus::kRejected, 3, 1100, 1200, 1500));
  t.tiers.back().score = 0.25;
  t.tiers.back().reason = "mean_logprob -2.1 < -1";
  t.tiers.push_back(tier("judge", TierStatus::kVerifier, 1, 1500, 1550, 1600));
  t.tiers.push_back(tier("large", TierStatus::kAccepted, 40, 1600, 0, 2600));
  t.answer_tier = 1;
  t.answer_live = true;
  t.answer_model = "large";
  t.baseline = Money::from_micros(40);
  t.baseline_known = true;
  t.finished = true;
  t.end = ExchangeEnd::kComplete;
  t.status = 200;
  return t;
}

}  // namespace

TEST_CASE("ledger_record: every tier with its timings, total cost, baseline and savings from the trace") {
  const RequestTrace t = escalated();
  REQUIRE(has_ledger_row(t));
  const LedgerRecord r = ledger_record(t);
  CHECK(r.request_id == "req-1");
  CHECK(r.wall_us == 1'700'000'000'000'000);
  CHECK(r.dialect == "anthropic");
  CHECK(r.key_id == "k1");
  CHECK(r.team == "search");
  CHECK(r.request_type == "qa");
  CHECK(r.route == "qa");
  CHECK(r.cache == CacheOutcome::kMiss);
  REQUIRE(r.tiers.size() == 3);
  CHECK(r.tiers[0].model == "small");
  CHECK(r.tiers[0].status == TierStatus::kRejected);
  CHECK(r.tiers[0].latency_us == 400);
  CHECK(r.tiers[0].ttft_us == 100);
  CHECK(r.tiers[0].score == doctest::Approx(0.25));
  CHECK(r.tiers[0].reason == "mean_logprob -2.1 < -1");
  CHECK(r.tiers[1].status == TierStatus::kVerifier);
  CHECK(r.tiers[2].ttft_us == 0);  // no first byte seen
  CHECK(r.tiers[2].latency_us == 1000);
  CHECK(r.answer_model == "large");
  CHECK(r.total_cost == Money::from_micros(44));
  CHECK(r.baseline == Money::from_micros(40));
  CHECK(r.savings == Money::from_micros(-4));
  CHECK(r.status_code == 200);
  CHECK_FALSE(r.stream_cancelled);
}

TEST_CASE("ledger_record: a cache hit is booked to (cache) at no cost, its baseline the stored answer's") {
  RequestTrace t;
  t.request_id = "hit";
  t.cache.outcome = CacheOutcome::kHit;
  t.cache.model = "gpt-4o-mini";
  t.baseline = Money::from_micros(12);
  t.baseline_known = true;
  t.finished = true;
  REQUIRE(has_ledger_row(t));
  const LedgerRecord r = ledger_record(t);
  CHECK(r.tiers.empty());
  CHECK(r.answer_model == "(cache)");
  CHECK(r.total_cost == Money{});
  CHECK(r.savings == Money::from_micros(12));
}

TEST_CASE("ledger_record: no answer means no baseline, a client that left is marked, a refused request has no row") {
  RequestTrace t = escalated();
  t.baseline_known = false;  // the last tier broke: nothing was answered
  t.answer_model.clear();
  t.end = ExchangeEnd::kClientGone;
  t.status = 499;
  const LedgerRecord r = ledger_record(t);
  CHECK(r.baseline == Money{});
  CHECK(r.savings == Money::from_micros(-44));
  CHECK(r.stream_cancelled);
  CHECK(r.status_code == 499);

  RequestTrace refused;  // e.g. a budget denial: classified, never dispatched
  refused.classified = true;
  refused.budget.allowed = false;
  CHECK_FALSE(has_ledger_row(refused));
}

TEST_CASE("RequestTrace: cost and upstream attempts sum every tier and verifier call") {
  RequestTrace t = escalated();
  CHECK(t.cost() == Money::from_micros(44));
  CHECK(t.savings() == Money::from_micros(-4));
  t.tiers[0].transport.push_back(AttemptRecord{"p", "small-up", 503, "", 5});
  CHECK(t.transport_attempts() == 4);  // 2 for tier 1, 1 for its verifier, 1 for the last tier
}

TEST_CASE("trace_id_for: a valid traceparent continues the caller's trace, else the request id's hex, else fresh") {
  CHECK(trace_id_for("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "x") ==
        "4bf92f3577b34da6a3ce929d0e0e4736");
  // All-zero and upper-case trace ids are invalid; so is version ff.
  const std::string rid = "frg-0123456789abcdef0123456789abcdef";
  CHECK(trace_id_for("00-00000000000000000000000000000000-00f067aa0ba902b7-01", rid) ==
        "0123456789abcdef0123456789abcdef");
  CHECK(trace_id_for("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", rid) ==
        "0123456789abcdef0123456789abcdef");
  CHECK(trace_id_for("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", rid) ==
        "0123456789abcdef0123456789abcdef");
  const std::string a = trace_id_for("", "client-chosen id");
  const std::string b = trace_id_for("garbage", "client-chosen id");
  CHECK(a.size() == 32);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(a != b);
}
