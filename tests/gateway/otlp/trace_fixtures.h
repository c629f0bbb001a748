#pragma once
// Request records built by hand for the OTLP tests.
#include "router/request_trace.h"

namespace frugal::otlp::testing {

inline Usage usage(int64_t in, int64_t out, int64_t cached = 0, int64_t written = 0) {
  Usage u;
  u.input_tokens = in;
  u.output_tokens = out;
  u.cached_input_tokens = cached;
  u.cache_write_5m_tokens = written;
  u.reported = true;
  return u;
}

inline router::TierAttempt tier(std::string model, router::TierStatus status, int64_t cost_micros, int64_t started,
                                int64_t first, int64_t last, uint64_t span_id) {
  router::TierAttempt t;
  t.model = std::move(model);
  t.provider = "prov";
  t.upstream_model = t.model + "-up";
  t.status = status;
  t.cost = Money::from_micros(cost_micros);
  t.usage = usage(10, 5);
  t.started_us = started;
  t.first_byte_us = first;
  t.last_byte_us = last;
  t.span_id = span_id;
  t.transport.push_back(router::AttemptRecord{"prov", t.upstream_model, 200, "", last - started});
  return t;
}

inline router::RequestTrace base_trace() {
  router::RequestTrace t;
  t.request_id = "req-1";
  t.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  t.span_id = 0x1111111111111111ull;
  t.wall_start_us = 1'700'000'000'000'000;
  t.mono_start_us = 1000;
  t.requested_model = "auto";
  t.classified = true;
  t.request_type = "qa";
  t.route = "qa";
  t.routed = true;
  t.finished = true;
  return t;
}

// An escalation: a rejected cheap tier, its verifier call, the live last tier answering.
inline router::RequestTrace escalated() {
  router::RequestTrace t = base_trace();
  t.client_stream = true;
  t.team = "search";
  t.cache.outcome = router::CacheOutcome::kMiss;
  t.cache.started_us = 1010;
  t.cache.ended_us = 1090;
  t.dispatched = true;
  t.tiers.push_back(tier("small", router::TierStatus::kRejected, 3, 1100, 1200, 1500, 0xa1));
  t.tiers.back().score = 0.25;
  t.tiers.back().reason = "mean_logprob -2.1 < -1";
  t.tiers.push_back(tier("judge", router::TierStatus::kVerifier, 1, 1500, 1550, 1600, 0xa2));
  t.tiers.back().score = 0.1;
  t.tiers.push_back(tier("large", router::TierStatus::kAccepted, 40, 1600, 1700, 2600, 0xa3));
  t.tiers.back().usage = usage(100, 50, 30, 7);
  t.answer_tier = 1;
  t.answer_live = true;
  t.answer_model = "large";
  t.answer_provider = "prov";
  t.answer_upstream_model = "large-up";
  t.answer_usage = usage(100, 50, 30, 7);
  t.baseline = Money::from_micros(50);
  t.baseline_known = true;
  t.mono_end_us = 2700;
  return t;
}

inline router::RequestTrace cache_hit() {
  router::RequestTrace t = base_trace();
  t.cache.outcome = router::CacheOutcome::kHit;
  t.cache.model = "large";
  t.cache.saved_usage = usage(100, 50);
  t.cache.started_us = 1010;
  t.cache.ended_us = 1020;
  t.answer_usage = usage(100, 50);
  t.baseline = Money::from_micros(44);
  t.baseline_known = true;
  t.mono_end_us = 1100;
  return t;
}

}  // namespace frugal::otlp::testing
