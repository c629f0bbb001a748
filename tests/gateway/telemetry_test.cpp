// Telemetry as pure functions of hand-built request traces: metric points, the access-log
// line, upstream warnings; the metrics registry's folding and Prometheus text; the access
// log's writer.
#include <doctest/doctest.h>
#include <simdjson.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "gateway/access_log.h"
#include "gateway/metric_points.h"
#include "gateway/metrics.h"
#include "gateway/telemetry.h"

using namespace frugal;
using namespace frugal::router;
using namespace frugal::gateway;

namespace {

constexpr int64_t kT0 = 1'000'000'000;  // the request's arrival on the monotonic clock (µs)

TierAttempt tier(std::string model, TierStatus s, int64_t micros, std::string reason = "") {
  TierAttempt a;
  a.model = model;
  a.provider = "mock";
  a.upstream_model = model + "-v1";
  a.status = s;
  a.reason = std::move(reason);
  a.cost = Money::from_micros(micros);
  a.usage.reported = true;
  a.usage.input_tokens = 100;
  a.usage.output_tokens = 11;
  a.started_us = kT0 + 1'000;
  a.first_byte_us = kT0 + 21'000;  // 20 ms to the first byte
  a.last_byte_us = kT0 + 71'000;   // 50 ms for 10 more tokens: 5 ms per token
  a.transport.push_back(AttemptRecord{"mock", a.upstream_model, 200, "", 20'000});
  return a;
}

// A routed request: tier 1 rejected by its rule, tier 2 accepted.
RequestTrace escalated() {
  RequestTrace t;
  t.request_id = "req-1";
  t.trace_id = "0af7651916cd43dd8448eb211c80319c";
  t.wall_start_us = 1'780'000'000'123'456;
  t.mono_start_us = kT0;
  t.dialect = Dialect::kOpenAi;
  t.requested_model = "auto";
  t.key_id = "k0123456789abcdef";
  t.team = "search";
  t.classified = true;
  t.request_type = "qa";
  t.route = "qa";
  t.routed = true;
  t.cache.outcome = CacheOutcome::kMiss;
  t.dispatched = true;
  t.tiers.push_back(tier("small", TierStatus::kRejected, 30, "mean_logprob -1.200 < -0.500"));
  t.tiers.push_back(tier("large", TierStatus::kAccepted, 400));
  t.tiers[1].usage.cached_input_tokens = 60;
  t.tiers[1].usage.cache_write_5m_tokens = 5;
  t.tiers[1].usage.cache_write_1h_tokens = 3;
  t.answer_tier = 1;
  t.answer_model = "large";
  t.answer_provider = "mock";
  t.answer_upstream_model = "large-v1";
  t.answer_usage = t.tiers[1].usage;
  t.baseline_known = true;
  t.baseline = Money::from_micros(1'000);
  t.finished = true;
  t.status = 200;
  t.mono_end_us = kT0 + 80'000;
  t.overhead_us = 250;
  return t;
}

// A point with all its labels in order (its set's, then its own).
struct Point {
  MetricFamily family;
  MetricLabels labels;
  double value;
  Money money;
};

std::string labels_of(const Point& p) {
  std::string s;
  for (const auto& l : p.labels) s += std::string(l.name) + "=" + std::string(l.value) + ";";
  return s;
}

std::vector<std::optional<Point>> of(const MetricPoints& pts, MetricFamily f) {
  std::vector<std::optional<Point>> out;
  for (const auto& p : pts)
    if (p.family == f) out.push_back(Point{p.family, pts.labels(p), p.value, p.money});
  return out;
}

const MetricLabel* label(const Point& p, std::string_view name) {
  for (const auto& l : p.labels)
    if (l.name == name) return &l;
  return nullptr;
}

config::GatewayConfig empty_config() { return config::GatewayConfig{}; }

// The sample lines of `text` (comments dropped), name{labels} -> value text.
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

}  // namespace

TEST_CASE(
    "metric_points: an escalated cascade books cost per tier, baseline and savings to the answer") {
  const router::RequestTrace trace = escalated();
  const auto pts = metric_points(trace);

  const auto requests = of(pts, MetricFamily::kRequests);
  REQUIRE(requests.size() == 1);
  CHECK(labels_of(*requests[0]) == "status=200;");
  const auto cache = of(pts, MetricFamily::kCacheRequests);
  REQUIRE(cache.size() == 1);
  CHECK(labels_of(*cache[0]) == "route=qa;result=miss;");
  CHECK(of(pts, MetricFamily::kCacheFollowers).empty());

  const auto cost = of(pts, MetricFamily::kCost);
  REQUIRE(cost.size() == 2);
  CHECK(labels_of(*cost[0]) ==
        "request_type=qa;route=qa;model=small;team=search;key_id=k0123456789abcdef;");
  CHECK(cost[0]->money == Money::from_micros(30));
  CHECK(labels_of(*cost[1]) ==
        "request_type=qa;route=qa;model=large;team=search;key_id=k0123456789abcdef;");
  CHECK(cost[1]->money == Money::from_micros(400));
  // Routed: the model comes from the policy; team and key are bounded by the registry.
  CHECK(label(*cost[0], "model")->source == LabelSource::kFixed);
  CHECK(label(*cost[0], "team")->source == LabelSource::kTeam);
  CHECK(label(*cost[0], "key_id")->source == LabelSource::kKey);

  const auto baseline = of(pts, MetricFamily::kBaseline);
  REQUIRE(baseline.size() == 1);
  CHECK(label(*baseline[0], "model")->value == "large");
  CHECK(baseline[0]->money == Money::from_micros(1'000));
  const auto savings = of(pts, MetricFamily::kSavings);
  REQUIRE(savings.size() == 1);
  CHECK(savings[0]->money == Money::from_micros(1'000 - 430));
  CHECK(of(pts, MetricFamily::kOverspend).empty());

  const auto esc = of(pts, MetricFamily::kEscalations);
  REQUIRE(esc.size() == 1);
  CHECK(labels_of(*esc[0]) == "route=qa;tier=1;reason=mean_logprob;");
  // The answer came from tier 2: one answer for it, none for the tier that passed it on.
  const auto answers = of(pts, MetricFamily::kTierAnswers);
  REQUIRE(answers.size() == 1);
  CHECK(labels_of(*answers[0]) == "route=qa;tier=2;model=large;");

  const auto overhead = of(pts, MetricFamily::kOverhead);
  REQUIRE(overhead.size() == 1);
  CHECK(overhead[0]->value == doctest::Approx(0.000250));
}

TEST_CASE(
    "metric_points: GenAI operations per tier attempt, tokens by type, TTFT and time per output "
    "token") {
  const router::RequestTrace trace = escalated();
  const auto pts = metric_points(trace);
  const auto dur = of(pts, MetricFamily::kOperationDuration);
  REQUIRE(dur.size() == 2);
  CHECK(labels_of(*dur[1]) ==
        "gen_ai_operation_name=chat;gen_ai_provider_name=mock;gen_ai_request_model=large-v1;");
  CHECK(dur[1]->value == doctest::Approx(0.070));
  const auto ttft = of(pts, MetricFamily::kTimeToFirstToken);
  REQUIRE(ttft.size() == 2);
  CHECK(ttft[0]->value == doctest::Approx(0.020));
  const auto tpot = of(pts, MetricFamily::kTimePerOutputToken);
  REQUIRE(tpot.size() == 2);
  CHECK(tpot[0]->value == doctest::Approx(0.005));

  std::map<std::string, double> tokens;  // model/type -> tokens
  for (const auto& p : of(pts, MetricFamily::kTokenUsage))
    tokens[std::string(label(*p, "gen_ai_request_model")->value) + "/" +
           std::string(label(*p, "gen_ai_token_type")->value)] += p->value;
  CHECK(tokens == std::map<std::string, double>{{"large-v1/cache_read", 60},
                                                {"large-v1/cache_write", 8},
                                                {"large-v1/input", 100},
                                                {"large-v1/output", 11},
                                                {"small-v1/input", 100},
                                                {"small-v1/output", 11}});
}

TEST_CASE(
    "metric_points: upstream attempts are counted as first, retry and fallback with their "
    "outcome") {
  RequestTrace t = escalated();
  auto& tr = t.tiers[0].transport;
  tr.clear();
  tr.push_back(AttemptRecord{"a", "m", 503, "", 10});
  tr.push_back(AttemptRecord{"a", "m", 0, "connection refused", 10});
  tr.push_back(AttemptRecord{"b", "m", 200, "", 10});
  std::vector<std::string> seen;
  const auto pts = metric_points(t);
  for (const auto& p : of(pts, MetricFamily::kUpstreamRequests))
    seen.push_back(labels_of(*p));
  CHECK(seen == std::vector<std::string>{"provider=a;outcome=http_503;attempt=first;",
                                         "provider=a;outcome=error;attempt=retry;",
                                         "provider=b;outcome=ok;attempt=fallback;",
                                         "provider=mock;outcome=ok;attempt=first;"});
  CHECK(upstream_outcome(AttemptRecord{"a", "m", 200, "answer broke off", 1}) == "error");
}

TEST_CASE("metric_points: a failed tier escalates as error, and a verifier call is no tier") {
  RequestTrace t = escalated();
  t.tiers[0].status = TierStatus::kError;
  TierAttempt v = tier("judge", TierStatus::kVerifier, 2, "verifier of tier 1");
  t.tiers.insert(t.tiers.begin() + 1, v);
  const auto pts = metric_points(t);
  const auto esc = of(pts, MetricFamily::kEscalations);
  REQUIRE(esc.size() == 1);
  CHECK(labels_of(*esc[0]) == "route=qa;tier=1;reason=error;");
  // The failed tier's operation carries error_type; the verifier call is an operation too.
  int errors = 0;
  for (const auto& p : of(pts, MetricFamily::kOperationDuration))
    errors += label(*p, "error_type") != nullptr;
  CHECK(errors == 1);
  CHECK(of(pts, MetricFamily::kOperationDuration).size() == 3);
  CHECK(of(pts, MetricFamily::kCost).size() == 3);
  // The verifier call between the tiers does not shift the answering tier's number.
  const auto answers = of(pts, MetricFamily::kTierAnswers);
  REQUIRE(answers.size() == 1);
  CHECK(labels_of(*answers[0]) == "route=qa;tier=2;model=large;");
  // When the last tier tried fails too, no tier answered.
  t.tiers.back().status = TierStatus::kError;
  CHECK(of(metric_points(t), MetricFamily::kTierAnswers).empty());
}

TEST_CASE("escalation_reason: the rejecting signal's name, bounded") {
  TierAttempt a;
  a.status = TierStatus::kRejected;
  a.reason = "json_schema: at /a: expected string";
  CHECK(escalation_reason(a) == "json_schema");
  a.reason = "none of any: regex 'x' did not match; non_empty: the answer is empty";
  CHECK(escalation_reason(a) == "any");
  a.reason = "";
  CHECK(escalation_reason(a) == "rejected");
  a.reason = std::string(100, 'x');
  CHECK(escalation_reason(a).size() == 32);
  a.status = TierStatus::kError;
  CHECK(escalation_reason(a) == "error");
}

TEST_CASE(
    "metric_points: a cache hit costs nothing and saves its baseline under the (cache) model") {
  RequestTrace t;
  t.request_type = "qa";
  t.route = "qa";
  t.routed = true;
  t.cache.outcome = CacheOutcome::kHit;
  t.cache.model = "large";
  t.baseline_known = true;
  t.baseline = Money::from_micros(700);
  t.finished = true;
  const auto pts = metric_points(t);
  CHECK(of(pts, MetricFamily::kCost).empty());
  CHECK(of(pts, MetricFamily::kOperationDuration).empty());
  CHECK(labels_of(*of(pts, MetricFamily::kCacheRequests).at(0)) == "route=qa;result=hit;");
  CHECK(of(pts, MetricFamily::kTierAnswers).empty());
  CHECK(of(pts, MetricFamily::kCacheFollowers).empty());
  t.cache.follower = true;  // single flight: the hit followed another request's live answer
  const auto followed_points = metric_points(t);
  const auto followed = of(followed_points, MetricFamily::kCacheFollowers);
  REQUIRE(followed.size() == 1);
  CHECK(labels_of(*followed[0]) == "route=qa;");
  const auto savings = of(pts, MetricFamily::kSavings);
  REQUIRE(savings.size() == 1);
  CHECK(label(*savings[0], "model")->value == "(cache)");
  CHECK(savings[0]->money == Money::from_micros(700));
}

TEST_CASE(
    "metric_points: a request that cost more than its baseline books the difference as overspend") {
  RequestTrace t = escalated();
  t.baseline = Money::from_micros(100);
  const auto pts = metric_points(t);
  CHECK(of(pts, MetricFamily::kSavings).empty());
  const auto over = of(pts, MetricFamily::kOverspend);
  REQUIRE(over.size() == 1);
  CHECK(over[0]->money == Money::from_micros(330));
}

TEST_CASE(
    "metric_points: a refused request counts only its status, and a passthrough model is "
    "client-chosen") {
  RequestTrace refused;
  refused.status = 429;
  refused.finished = true;
  refused.mono_end_us = kT0 + 10;
  const auto pts = metric_points(refused);
  CHECK(of(pts, MetricFamily::kRequests).size() == 1);
  CHECK(labels_of(*of(pts, MetricFamily::kRequests)[0]) == "status=429;");
  CHECK(of(pts, MetricFamily::kBaseline).empty());
  CHECK(of(pts, MetricFamily::kCost).empty());
  CHECK(of(pts, MetricFamily::kCacheRequests).empty());

  RequestTrace pass = escalated();
  pass.routed = false;
  pass.route = "passthrough";
  pass.tiers.erase(pass.tiers.begin());
  pass.answer_tier = 0;
  const MetricPoints pass_points = metric_points(pass);
  for (const auto& point : pass_points) {
    const Point p{point.family, pass_points.labels(point), point.value, point.money};
    if (const MetricLabel* m = label(p, "model")) CHECK(m->source == LabelSource::kModel);
    if (const MetricLabel* m = label(p, "gen_ai_request_model"))
      CHECK(m->source == LabelSource::kModel);
  }
}

TEST_CASE(
    "MetricsRegistry: counters, exact USD sums and cumulative histogram buckets in Prometheus "
    "text") {
  MetricsRegistry reg(100);
  const config::GatewayConfig cfg = empty_config();
  const router::RequestTrace trace = escalated();
  for (int i = 0; i < 3; ++i) reg.record(metric_points(trace), cfg);
  const std::string text = reg.render();
  CHECK(text.find("# TYPE frugal_cost_usd_total counter\n") != std::string::npos);
  CHECK(text.find("# TYPE gen_ai_client_token_usage histogram\n") != std::string::npos);
  const auto s = samples(text);
  CHECK(s.at("frugal_requests_total{status=\"200\"}") == "3");
  CHECK(s.at("frugal_cost_usd_total{request_type=\"qa\",route=\"qa\",model=\"large\",team="
             "\"search\",key_id="
             "\"k0123456789abcdef\"}") == Money::from_micros(1'200).to_usd_string());
  CHECK(s.at("frugal_savings_usd_total{request_type=\"qa\",route=\"qa\",model=\"large\",team="
             "\"search\",key_id="
             "\"k0123456789abcdef\"}") == Money::from_micros(3 * 570).to_usd_string());
  // 20 ms TTFT: not in the 0.01 bucket, in 0.02 and above; +Inf equals the count.
  const std::string ttft =
      "gen_ai_server_time_to_first_token_seconds_bucket{gen_ai_operation_name=\"chat\",gen_ai_"
      "provider_name="
      "\"mock\",gen_ai_request_model=\"large-v1\",le=\"";
  CHECK(s.at(ttft + "0.01\"}") == "0");
  CHECK(s.at(ttft + "0.02\"}") == "3");
  CHECK(s.at(ttft + "10\"}") == "3");
  CHECK(s.at(ttft + "+Inf\"}") == "3");
  CHECK(s.at("frugal_overhead_seconds_count") == "3");
  CHECK(s.at("frugal_escalations_total{route=\"qa\",tier=\"1\",reason=\"mean_logprob\"}") == "3");
}

TEST_CASE("MetricsRegistry: points with equal values under different label names are different series") {
  // The registry finds a known series by the label names' addresses and the values'
  // text; names with the same text at different addresses must land in one series.
  MetricsRegistry reg(100);
  const config::GatewayConfig cfg = empty_config();
  const std::string route_name = "route";  // the same text as the literal, elsewhere
  for (int i = 0; i < 2; ++i) {
    MetricPoints pts;
    pts.add(MetricFamily::kCacheFollowers, pts.add_set({{"route", "x"}}), 1);
    pts.add(MetricFamily::kCacheRequests, pts.add_set({{"route", "x"}, {"result", "hit"}}), 1);
    pts.add(MetricFamily::kCacheRequests, pts.add_set({{"result", "x"}, {"route", "hit"}}), 1);
    pts.add(MetricFamily::kCacheFollowers, pts.add_set({{std::string_view(route_name), "x"}}), 1);
    reg.record(pts, cfg);
  }
  const auto s = samples(reg.render());
  CHECK(s.at("frugal_cache_followers_total{route=\"x\"}") == "4");
  CHECK(s.at("frugal_cache_requests_total{route=\"x\",result=\"hit\"}") == "2");
  CHECK(s.at("frugal_cache_requests_total{result=\"x\",route=\"hit\"}") == "2");
}

TEST_CASE("MetricsRegistry: label values are escaped") {
  MetricsRegistry reg(100);
  RequestTrace t = escalated();
  t.route = "a\"b\\c\nd";
  reg.record(metric_points(t), empty_config());
  CHECK(reg.render().find("route=\"a\\\"b\\\\c\\nd\"") != std::string::npos);
}

TEST_CASE(
    "MetricsRegistry: client-chosen values past max_label_values fold into other, configured ones "
    "never") {
  MetricsRegistry reg(2);
  config::GatewayConfig cfg;
  cfg.key_teams["kconfigured"] = "ops";
  auto with_key = [](std::string key) {
    RequestTrace t;
    t.key_id = std::move(key);
    t.team = "ops";
    t.dispatched = true;
    t.baseline_known = true;
    t.baseline = Money::from_micros(1);
    return t;
  };
  for (const char* k : {"ka", "kb", "kc", "kd", "ka", "kconfigured"}) {
    const router::RequestTrace t = with_key(k);
    reg.record(metric_points(t), cfg);
  }
  // Invalid UTF-8 would make the exposition unreadable: it folds too.
  const router::RequestTrace bad = with_key("k\xff");
  reg.record(metric_points(bad), cfg);
  const auto s = samples(reg.render());
  auto baseline_of = [&](const std::string& key) {
    const auto it = s.find(
        "frugal_baseline_usd_total{request_type=\"default\",route=\"passthrough\",model=\"\","
        "team=\"ops\",key_id=\"" +
        key + "\"}");
    return it == s.end() ? std::string("absent") : it->second;
  };
  CHECK(baseline_of("ka") == Money::from_micros(2).to_usd_string());
  CHECK(baseline_of("kb") == Money::from_micros(1).to_usd_string());
  CHECK(baseline_of("kc") == "absent");
  CHECK(baseline_of("other") == Money::from_micros(3).to_usd_string());  // kc, kd, k\xff
  CHECK(baseline_of("kconfigured") == Money::from_micros(1).to_usd_string());
  CHECK(reg.folded() == 6);  // one per point: each request's baseline and savings
}

TEST_CASE(
    "MetricsRegistry: records from several threads are all counted, with one admission per value") {
  MetricsRegistry reg(4);
  const config::GatewayConfig cfg = empty_config();
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&reg, &cfg, i] {
      for (int n = 0; n < kEach; ++n) {
        RequestTrace t = escalated();
        t.key_id = "key" + std::to_string((n + i) % 8);  // 8 keys, 4 admitted
        reg.record(metric_points(t), cfg);
      }
    });
  }
  std::string mid = reg.render();  // a scrape while they record
  for (auto& th : threads) th.join();
  const auto s = samples(reg.render());
  CHECK(s.at("frugal_requests_total{status=\"200\"}") == std::to_string(kThreads * kEach));
  int keys = 0;
  for (const auto& [k, v] : s)
    if (k.rfind("frugal_baseline_usd_total{", 0) == 0) ++keys;
  CHECK(keys == 5);  // 4 admitted + other
  CHECK(!mid.empty());
}

TEST_CASE("access_log_line: one JSON object with the request's facts, exact money, no key") {
  RequestTrace t = escalated();
  t.request_id = "req \"quoted\"";
  const std::string line = access_log_line(t);
  CHECK(line.find('\n') == std::string::npos);
  simdjson::dom::parser p;
  simdjson::dom::element j;
  REQUIRE_MESSAGE(!p.parse(line).get(j), line);
  CHECK(std::string_view(j["time"]) == "2026-05-28T20:26:40.123456Z");
  CHECK(std::string_view(j["request_id"]) == "req \"quoted\"");
  CHECK(std::string_view(j["trace_id"]) == "0af7651916cd43dd8448eb211c80319c");
  CHECK(std::string_view(j["dialect"]) == "openai");
  CHECK(std::string_view(j["key_id"]) == "k0123456789abcdef");
  CHECK(std::string_view(j["team"]) == "search");
  CHECK(std::string_view(j["request_type"]) == "qa");
  CHECK(std::string_view(j["route"]) == "qa");
  CHECK(int64_t(j["tier"]) == 2);
  CHECK(std::string_view(j["provider"]) == "mock");
  CHECK(std::string_view(j["model"]) == "large");
  CHECK(std::string_view(j["upstream_model"]) == "large-v1");
  CHECK(int64_t(j["status"]) == 200);
  CHECK(std::string_view(j["end"]) == "complete");
  CHECK(std::string_view(j["cache"]) == "miss");
  CHECK(int64_t(j["tiers_tried"]) == 2);
  CHECK(int64_t(j["upstream_attempts"]) == 2);
  CHECK(int64_t(j["tokens"]["input"]) == 200);
  CHECK(int64_t(j["tokens"]["cache_read"]) == 60);
  CHECK(int64_t(j["tokens"]["cache_write"]) == 8);
  CHECK(int64_t(j["tokens"]["output"]) == 22);
  // The money fields are the exact decimals the ledger prints, as JSON numbers.
  CHECK(line.find("\"cost_usd\":" + Money::from_micros(430).to_usd_string() + ",") !=
        std::string::npos);
  CHECK(line.find("\"baseline_usd\":" + Money::from_micros(1000).to_usd_string() + ",") !=
        std::string::npos);
  CHECK(line.find("\"savings_usd\":" + Money::from_micros(570).to_usd_string() + ",") !=
        std::string::npos);
  CHECK(int64_t(j["overhead_us"]) == 250);
  CHECK(int64_t(j["duration_us"]) == 80'000);
  CHECK(int64_t(j["ttft_us"]) == 21'000);
}

TEST_CASE("access_log_line: a refused request and a cache hit") {
  RequestTrace refused;
  refused.request_id = "r";
  refused.status = 429;
  refused.finished = true;
  simdjson::dom::parser p;
  simdjson::dom::element j;
  std::string line = access_log_line(refused);
  REQUIRE(!p.parse(line).get(j));
  CHECK(std::string_view(j["end"]) == "refused");
  CHECK(j["tier"].is_null());
  CHECK(j["cache"].is_null());
  CHECK(j["ttft_us"].is_null());
  CHECK(j["key_id"].is_null());

  RequestTrace hit = refused;
  hit.status = 200;
  hit.cache.outcome = CacheOutcome::kHit;
  hit.cache.model = "large";
  line = access_log_line(hit);
  REQUIRE(!p.parse(line).get(j));
  CHECK(std::string_view(j["end"]) == "complete");
  CHECK(std::string_view(j["cache"]) == "hit");
  CHECK(std::string_view(j["model"]) == "large");
  CHECK(j["provider"].is_null());
}

TEST_CASE("upstream_warnings: one line per failed attempt, saying what happened next") {
  RequestTrace t = escalated();
  auto& tr = t.tiers[1].transport;
  tr.clear();
  tr.push_back(AttemptRecord{"a", "m", 503, "", 12'000});
  tr.push_back(AttemptRecord{"a", "m", 0, "connection refused", 1'000});
  tr.push_back(AttemptRecord{"b", "m2", 200, "", 1'000});
  const auto w = upstream_warnings(t);
  REQUIRE(w.size() == 2);
  CHECK(w[0] == "request req-1: upstream 'a' model 'm' returned status 503 after 12 ms; retrying");
  CHECK(w[1] ==
        "request req-1: upstream 'a' model 'm' failed: connection refused after 1 ms; falling back "
        "to 'b' "
        "model 'm2'");
  t.tiers[1].transport.resize(1);
  const auto last = upstream_warnings(t);
  REQUIRE(last.size() == 1);
  CHECK(last[0].find("no attempt left for this tier") != std::string::npos);
  CHECK(upstream_warnings(escalated()).empty());
}

TEST_CASE("AccessLog: lines from several threads all reach the file, whole") {
  const auto path = std::filesystem::temp_directory_path() /
                    ("frugal-access-" + std::to_string(getpid()) + ".log");
  std::filesystem::remove(path);
  constexpr int kThreads = 3, kEach = 2'000;
  {
    auto log = AccessLog::open(path.string());
    REQUIRE(log);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i)
      threads.emplace_back([&log, i] {
        for (int n = 0; n < kEach; ++n)
          (*log)->add(R"({"thread":)" + std::to_string(i) + R"(,"n":)" + std::to_string(n) + "}");
      });
    for (auto& th : threads) th.join();
  }  // the destructor writes what is left
  std::ifstream in(path);
  std::string line;
  std::vector<int> next(kThreads, 0);
  int lines = 0;
  simdjson::dom::parser p;
  while (std::getline(in, line)) {
    simdjson::dom::element j;
    REQUIRE_MESSAGE(!p.parse(line).get(j), line);
    const int64_t th = j["thread"];
    const int64_t n = j["n"];
    CHECK(n == next[static_cast<size_t>(th)]);  // one thread's lines stay in order
    next[static_cast<size_t>(th)] = static_cast<int>(n) + 1;
    ++lines;
  }
  CHECK(lines == kThreads * kEach);
  std::filesystem::remove(path);

  auto bad = AccessLog::open("/nonexistent-dir/frugal/access.log");
  REQUIRE(!bad);
  CHECK(bad.error().message.find("/nonexistent-dir/frugal/access.log") != std::string::npos);
}

TEST_CASE("an unpriced tier: counted in frugal_unpriced_requests_total by model, price unknown in the access log") {
  RequestTrace t = escalated();
  CHECK(of(metric_points(t), MetricFamily::kUnpricedRequests).empty());
  {
    simdjson::dom::parser p;
    const std::string line = access_log_line(t);
    simdjson::dom::element j;
    REQUIRE(!p.parse(line).get(j));
    CHECK(std::string_view(j["price"]) == "none");  // the hand-built trace names no price source
  }
  t.tiers[0].price = policies::PriceSource::kCatalogue;
  t.tiers[1].price = policies::PriceSource::kUnknown;
  t.shaping.applied = kShapedConcise;
  t.shaping.max_tokens = 0;
  const auto pts = metric_points(t);
  const auto unpriced = of(pts, MetricFamily::kUnpricedRequests);
  REQUIRE(unpriced.size() == 1);
  CHECK(labels_of(*unpriced[0]) == "model=large;");
  CHECK(unpriced[0]->value == 1);
  const std::string line = access_log_line(t);
  simdjson::dom::parser p;
  simdjson::dom::element j;
  REQUIRE_MESSAGE(!p.parse(line).get(j), line);
  CHECK(std::string_view(j["price"]) == "unknown");
  CHECK(std::string_view(j["shaping"]) == "concise");
  t.tiers[1].price = policies::PriceSource::kPolicy;
  CHECK(access_log_line(t).find(R"("price":"policy+catalogue")") != std::string::npos);

  MetricsRegistry reg(100);
  const auto cfg = empty_config();
  const RequestTrace plain = escalated();
  reg.record(metric_points(plain), cfg);
  RequestTrace u = escalated();
  u.tiers[1].price = policies::PriceSource::kUnknown;
  reg.record(metric_points(u), cfg);
  reg.record(metric_points(u), cfg);
  const std::string text = reg.render();
  CHECK(text.find("# TYPE frugal_unpriced_requests_total counter\n") != std::string::npos);
  CHECK(text.find("frugal_unpriced_requests_total{model=\"large\"} 2\n") != std::string::npos);
}

namespace {

std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::vector<std::string> out;
  std::ifstream in(p);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST_CASE("Telemetry::reconfigure: the access log turns on, moves and turns off, metrics on and off, for the next request") {
  const auto dir = std::filesystem::temp_directory_path() / ("frugal-telemetry-reload-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto a = dir / "a.jsonl", b = dir / "b.jsonl";
  config::GatewayConfig gw;
  config::TelemetryConfig cfg;  // everything off
  cfg.metrics = false;
  auto opened = Telemetry::open(cfg);
  REQUIRE(opened);
  Telemetry& t = **opened;
  RequestTrace r = escalated();
  t.record(r, gw);
  CHECK(t.access_log() == nullptr);

  cfg.access_log = a.string();
  cfg.metrics = true;
  REQUIRE(t.reconfigure(cfg));
  r.request_id = "req-a";
  t.record(r, gw);
  CHECK(t.metrics_enabled());

  // A file that cannot be opened rejects the change, and nothing changes.
  config::TelemetryConfig bad = cfg;
  bad.access_log = (dir / "missing-dir" / "x.jsonl").string();
  bad.metrics = false;
  auto rejected = t.reconfigure(bad);
  REQUIRE(!rejected);
  CHECK(rejected.error().message.find("missing-dir") != std::string::npos);
  CHECK(t.metrics_enabled());
  r.request_id = "req-a2";
  t.record(r, gw);

  cfg.access_log = b.string();
  cfg.metrics = false;
  REQUIRE(t.reconfigure(cfg));  // what was buffered for a.jsonl is written there first
  CHECK(lines_of(a).size() == 2);
  r.request_id = "req-b";
  t.record(r, gw);

  cfg.access_log.clear();
  REQUIRE(t.reconfigure(cfg));
  CHECK(t.access_log() == nullptr);
  r.request_id = "req-off";
  t.record(r, gw);

  const auto la = lines_of(a), lb = lines_of(b);
  REQUIRE(la.size() == 2);
  CHECK(la[0].find("\"req-a\"") != std::string::npos);
  CHECK(la[1].find("\"req-a2\"") != std::string::npos);
  REQUIRE(lb.size() == 1);
  CHECK(lb[0].find("\"req-b\"") != std::string::npos);
  // Metrics were on for req-a and req-a2 only; the series stay while off.
  CHECK(t.metrics().render().find("frugal_requests_total{status=\"200\"} 2\n") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("MetricsRegistry: points whose label values only split differently stay apart on the fast path") {
  MetricsRegistry reg(100);
  const config::GatewayConfig cfg = empty_config();
  RequestTrace ab = escalated(), a = escalated();
  ab.request_type = "x";
  ab.route = "ab";
  a.request_type = "xa";
  a.route = "b";
  for (int i = 0; i < 2; ++i) reg.record(metric_points(ab), cfg);  // the second time: interned
  for (int i = 0; i < 3; ++i) reg.record(metric_points(a), cfg);
  const auto s = samples(reg.render());
  CHECK(s.at("frugal_escalations_total{route=\"ab\",tier=\"1\",reason=\"mean_logprob\"}") == "2");
  CHECK(s.at("frugal_escalations_total{route=\"b\",tier=\"1\",reason=\"mean_logprob\"}") == "3");
  CHECK(s.at("frugal_cache_requests_total{route=\"ab\",result=\"miss\"}") == "2");
  CHECK(s.at("frugal_baseline_usd_total{request_type=\"xa\",route=\"b\",model=\"large\",team=\"search\","
             "key_id=\"k0123456789abcdef\"}") == Money::from_micros(3'000).to_usd_string());
}

TEST_CASE("MetricsRegistry: points that share a label set stay apart by family and by their own label") {
  // A tier's operation labels are one set for its duration, TTFT and token points; the
  // token points differ only in gen_ai_token_type. Recorded twice (the second time every
  // set and point is known), each series holds exactly its own sum.
  MetricsRegistry reg(100);
  const config::GatewayConfig cfg = empty_config();
  const router::RequestTrace trace = escalated();
  for (int i = 0; i < 2; ++i) reg.record(metric_points(trace), cfg);
  const auto s = samples(reg.render());
  const std::string op = "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"mock\",gen_ai_request_model=\"large-v1\"";
  CHECK(s.at("gen_ai_client_token_usage_sum{" + op + ",gen_ai_token_type=\"input\"}") == "200");
  CHECK(s.at("gen_ai_client_token_usage_sum{" + op + ",gen_ai_token_type=\"output\"}") == "22");
  CHECK(s.at("gen_ai_client_token_usage_sum{" + op + ",gen_ai_token_type=\"cache_read\"}") == "120");
  CHECK(s.at("gen_ai_client_token_usage_count{" + op + ",gen_ai_token_type=\"cache_write\"}") == "2");
  CHECK(s.at("gen_ai_client_operation_duration_seconds_count{" + op + "}") == "2");
  CHECK(s.at("gen_ai_server_time_to_first_token_seconds_count{" + op + "}") == "2");
  // The small tier's set differs in one value: its own series.
  CHECK(s.at("gen_ai_client_token_usage_sum{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"mock\","
             "gen_ai_request_model=\"small-v1\",gen_ai_token_type=\"input\"}") == "200");
}
