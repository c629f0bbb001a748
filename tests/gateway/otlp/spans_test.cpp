// spans(trace): the spans of hand-built request records.
#include <doctest/doctest.h>

#include "gateway/otlp/spans.h"
#include "trace_fixtures.h"

using namespace frugal;
using namespace frugal::otlp;
using namespace frugal::otlp::testing;

namespace {

template <class T>
T attr(const Span& s, std::string_view key) {
  const AttrValue* v = find_attribute(s.attributes, key);
  REQUIRE_MESSAGE(v, "missing attribute ", key, " on ", s.name);
  if constexpr (std::is_same_v<T, std::string>) {  // owned or borrowed
    const auto str = string_value(*v);
    REQUIRE_MESSAGE(str, "attribute ", key, " has another type");
    return std::string(*str);
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    const auto strs = strings_value(*v);
    REQUIRE_MESSAGE(strs, "attribute ", key, " has another type");
    return std::vector<std::string>(strs->begin(), strs->end());
  } else {
    REQUIRE_MESSAGE(std::holds_alternative<T>(*v), "attribute ", key, " has another type");
    return std::get<T>(*v);
  }
}

bool has_attr(const Span& s, std::string_view key) { return find_attribute(s.attributes, key) != nullptr; }

}  // namespace

TEST_CASE("otlp spans: an escalation is a server span with the cache lookup, each tier and the verifier as children") {
  const router::RequestTrace t = escalated();
  const std::vector<Span> ss = spans(t);
  REQUIRE(ss.size() == 5);
  CHECK(span_count(t) == 5);
  const Span& root = ss[0];
  CHECK(root.name == "chat auto");
  CHECK(root.kind == SpanKind::kServer);
  CHECK(root.trace_id == t.trace_id);
  CHECK(root.span_id == t.span_id);
  CHECK(root.parent_span_id == 0);
  CHECK(root.start_unix_ns == 1'700'000'000'000'000'000);
  CHECK(root.end_unix_ns == root.start_unix_ns + 1700 * 1000);  // mono 1000 → 2700
  CHECK(root.status == StatusCode::kUnset);
  CHECK(attr<std::string>(root, "gen_ai.operation.name") == "chat");
  CHECK(attr<std::string>(root, "gen_ai.provider.name") == "prov");
  CHECK(attr<std::string>(root, "gen_ai.request.model") == "auto");
  CHECK(attr<std::string>(root, "gen_ai.response.model") == "large-up");
  CHECK(attr<int64_t>(root, "gen_ai.usage.input_tokens") == 100);
  CHECK(attr<int64_t>(root, "gen_ai.usage.output_tokens") == 50);
  CHECK(attr<int64_t>(root, "gen_ai.usage.cache_read.input_tokens") == 30);
  CHECK(attr<int64_t>(root, "gen_ai.usage.cache_write.input_tokens") == 7);
  CHECK(!has_attr(root, "error.type"));
  CHECK(!has_attr(root, "gen_ai.response.finish_reasons"));  // this record does not know them
  CHECK(attr<std::string>(root, "frugal.request_type") == "qa");
  CHECK(attr<std::string>(root, "frugal.route") == "qa");
  CHECK(attr<int64_t>(root, "frugal.tier") == 2);
  CHECK(attr<std::string>(root, "frugal.cache") == "miss");
  CHECK(attr<double>(root, "frugal.cost_usd") == 0.000044);  // 3 + 1 + 40 micro-dollars
  CHECK(attr<double>(root, "frugal.baseline_usd") == 0.00005);
  CHECK(attr<double>(root, "frugal.savings_usd") == 0.000006);
  CHECK(attr<int64_t>(root, "http.response.status_code") == 200);
  CHECK(attr<std::string>(root, "frugal.team") == "search");

  const Span& cache = ss[1];
  CHECK(cache.name == "cache lookup");
  CHECK(cache.kind == SpanKind::kInternal);
  CHECK(cache.parent_span_id == root.span_id);
  CHECK(cache.span_id == cache_span_id(root.span_id));
  CHECK(cache.span_id != root.span_id);
  CHECK(cache.end_unix_ns - cache.start_unix_ns == 80'000);
  CHECK(attr<std::string>(cache, "frugal.cache") == "miss");

  const Span& small = ss[2];
  CHECK(small.name == "chat small-up");
  CHECK(small.kind == SpanKind::kClient);
  CHECK(small.span_id == 0xa1);
  CHECK(small.parent_span_id == root.span_id);
  CHECK(small.start_unix_ns == root.start_unix_ns + 100'000);
  CHECK(small.end_unix_ns == root.start_unix_ns + 500'000);
  CHECK(attr<int64_t>(small, "frugal.tier") == 1);
  CHECK(attr<std::string>(small, "frugal.tier.status") == "rejected");
  CHECK(attr<double>(small, "frugal.score") == 0.25);
  CHECK(attr<std::string>(small, "gen_ai.request.model") == "small-up");
  CHECK(attr<double>(small, "frugal.cost_usd") == 0.000003);
  REQUIRE(small.events.size() == 1);
  CHECK(small.events[0].name == "upstream attempt");
  CHECK(small.events[0].time_unix_ns == small.end_unix_ns);

  const Span& judge = ss[3];
  CHECK(judge.name == "verify judge-up");
  CHECK(judge.parent_span_id == root.span_id);
  CHECK(attr<bool>(judge, "frugal.verifier"));
  CHECK(attr<int64_t>(judge, "frugal.tier") == 1);  // the tier it scored
  CHECK(judge.status == StatusCode::kUnset);

  const Span& large = ss[4];
  CHECK(large.name == "chat large-up");
  CHECK(attr<int64_t>(large, "frugal.tier") == 2);
  CHECK(attr<std::string>(large, "frugal.tier.status") == "accepted");
  CHECK(attr<int64_t>(large, "gen_ai.usage.input_tokens") == 100);
  CHECK(attr<double>(large, "frugal.time_to_first_byte_s") == doctest::Approx(0.0001));
}

TEST_CASE("otlp spans: finish reasons are the answering tier's, on the request and on each tier span") {
  router::RequestTrace t = escalated();
  for (auto& a : t.tiers) a.finish_reasons = {a.status == router::TierStatus::kAccepted ? "length" : "stop"};
  const std::vector<Span> ss = spans(t);
  using Reasons = std::vector<std::string>;
  CHECK(attr<Reasons>(ss[0], "gen_ai.response.finish_reasons") == Reasons{"length"});
  for (size_t i = 2; i < ss.size(); ++i) CHECK(has_attr(ss[i], "gen_ai.response.finish_reasons"));
  t.cache.outcome = router::CacheOutcome::kHit;  // a hit: the stored answer's, unknown here
  CHECK(!has_attr(spans(t)[0], "gen_ai.response.finish_reasons"));
}

TEST_CASE("otlp spans: a cache hit answers from the cache, costs nothing and has no tier spans") {
  const router::RequestTrace t = cache_hit();  // the spans borrow its strings
  const std::vector<Span> ss = spans(t);
  REQUIRE(ss.size() == 2);
  CHECK(attr<std::string>(ss[0], "frugal.cache") == "hit");
  CHECK(attr<std::string>(ss[0], "gen_ai.response.model") == "large");
  CHECK(!has_attr(ss[0], "gen_ai.provider.name"));
  CHECK(!has_attr(ss[0], "frugal.tier"));
  CHECK(attr<double>(ss[0], "frugal.cost_usd") == 0.0);
  CHECK(attr<double>(ss[0], "frugal.savings_usd") == 0.000044);
  CHECK(ss[1].name == "cache lookup");
  CHECK(attr<std::string>(ss[1], "frugal.cache") == "hit");
}

TEST_CASE("otlp spans: a caller's traceparent makes the request span its child") {
  router::RequestTrace t = cache_hit();
  const auto tp = router::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  REQUIRE(tp);
  t.trace_id = tp->trace_id;
  t.parent_span_id = tp->parent_id;
  const std::vector<Span> ss = spans(t);
  CHECK(ss[0].parent_span_id == 0x00f067aa0ba902b7ull);
  CHECK(ss[0].parent_remote);
  CHECK(ss[0].trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(ss[1].parent_span_id == t.span_id);
  CHECK(!ss[1].parent_remote);
}

TEST_CASE("otlp spans: upstream failures set error.type and an error status") {
  router::RequestTrace t = base_trace();
  t.dispatched = true;
  t.tiers.push_back(tier("small", router::TierStatus::kError, 0, 1100, 0, 1300, 0xb1));
  t.tiers.back().transport = {{"prov", "small-up", 503, "", 100}, {"prov2", "small-up", 0, "timed out", 100}};
  t.tiers.back().reason = "timed out";
  t.tiers.push_back(tier("large", router::TierStatus::kError, 0, 1300, 0, 1400, 0xb2));
  t.tiers.back().transport = {{"prov", "large-up", 502, "", 100}};
  t.status = 502;
  t.end = router::ExchangeEnd::kUpstreamError;
  t.mono_end_us = 1500;
  const std::vector<Span> ss = spans(t);
  REQUIRE(ss.size() == 3);  // no cache lookup recorded
  CHECK(attr<std::string>(ss[0], "error.type") == "502");
  CHECK(ss[0].status == StatusCode::kError);
  CHECK(attr<std::string>(ss[1], "error.type") == "timeout");
  CHECK(ss[1].status == StatusCode::kError);
  REQUIRE(ss[1].events.size() == 2);
  CHECK(attr<int64_t>(Span{.attributes = ss[1].events[0].attributes}, "http.response.status_code") == 503);
  CHECK(ss[1].events[1].time_unix_ns - ss[1].events[0].time_unix_ns == 100'000);
  CHECK(attr<std::string>(ss[2], "error.type") == "502");

  // A stream cut by the upstream after a 200 is an error of the request.
  router::RequestTrace broke = escalated();
  broke.end = router::ExchangeEnd::kUpstreamBroke;
  CHECK(attr<std::string>(spans(broke)[0], "error.type") == "upstream_broke");
  CHECK(spans(broke)[0].status == StatusCode::kError);
  // A client that goes away is recorded, but it is not the gateway's error.
  router::RequestTrace gone = escalated();
  gone.end = router::ExchangeEnd::kClientGone;
  gone.status = 499;
  CHECK(attr<std::string>(spans(gone)[0], "error.type") == "client_gone");
  CHECK(spans(gone)[0].status == StatusCode::kUnset);
}

TEST_CASE("otlp spans: traceparent parsing and the upstream header value") {
  CHECK(!router::parse_traceparent(""));
  CHECK(!router::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));  // zero parent
  CHECK(!router::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"));
  CHECK(!router::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"));
  auto later = router::parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra");
  REQUIRE(later);  // a later version may append fields
  CHECK(!later->sampled);
  CHECK(router::traceparent_value("4bf92f3577b34da6a3ce929d0e0e4736", 0xa1, true) ==
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000a1-01");
  CHECK(router::span_id_hex(0xfedcba9876543210ull) == "fedcba9876543210");
  CHECK(router::new_span_id() != 0);
}
