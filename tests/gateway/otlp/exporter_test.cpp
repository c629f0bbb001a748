// The exporter with a scripted collector (a fake Sender): batching, drops when the
// collector is slow, retries honouring Retry-After, the flush at shutdown.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/ids.h"
#include "gateway/otlp/exporter.h"
#include "gateway/otlp/spans.h"
#include "proto_reader.h"
#include "trace_fixtures.h"

using namespace frugal;
using namespace frugal::otlp;
using namespace frugal::otlp::testing;

namespace {

config::OtlpConfig test_config() {
  config::OtlpConfig c;
  c.enabled = true;
  c.endpoint = "http://collector.invalid";
  c.flush_interval_ms = 5;
  c.export_interval_ms = 3'600'000;  // metrics only at shutdown unless a test says otherwise
  c.max_retry_ms = 5'000;
  return c;
}

// A collector whose answers the test scripts; records every request.
struct FakeCollector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, std::string>> received;  // url, body
  std::vector<int64_t> times_us;
  std::vector<SendResult> script;  // answers in order; then 200
  bool hold = false;               // requests wait while set

  Sender sender() {
    return [this](const std::string& url, std::string_view body, int64_t) {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return !hold; });
      received.emplace_back(url, std::string(body));
      times_us.push_back(mono_us());
      SendResult r{200, "", -1};
      if (!script.empty()) {
        r = script.front();
        script.erase(script.begin());
      }
      cv.notify_all();
      return r;
    };
  }
  void release() {
    std::lock_guard lock(mu);
    hold = false;
    cv.notify_all();
  }
  size_t spans_received() {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const auto& [url, body] : received) {
      if (url.find("/v1/traces") == std::string::npos) continue;
      const auto req = parse(body);
      const auto ss = parse(one(parse(one(req, 1).bytes), 2).bytes);
      n += all(ss, 2).size();
    }
    return n;
  }
};

bool poll_until(const std::function<bool()>& done, int64_t limit_ms = 20'000) {
  const int64_t until = mono_us() + limit_ms * 1000;
  while (!done()) {
    if (mono_us() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace

TEST_CASE("otlp exporter: spans go to /v1/traces in batches, metrics to /v1/metrics at shutdown") {
  FakeCollector col;
  config::OtlpConfig cfg = test_config();
  Exporter ex(cfg, col.sender());
  for (int i = 0; i < 3; ++i) ex.record(escalated());
  CHECK(poll_until([&] { return ex.spans_exported() == 15; }));
  ex.shutdown(2'000);
  CHECK(col.spans_received() == 15);
  CHECK(ex.spans_dropped() == 0);
  CHECK(ex.metric_exports() == 1);
  std::lock_guard lock(col.mu);
  REQUIRE(!col.received.empty());
  CHECK(col.received.back().first == "http://collector.invalid/v1/metrics");
}

TEST_CASE("otlp exporter: a stalled collector never blocks record(), the overflow is dropped and counted") {
  FakeCollector col;
  col.hold = true;
  config::OtlpConfig cfg = test_config();
  cfg.queue_size = 4;
  cfg.batch_size = 5;  // one trace per export
  Exporter ex(cfg, col.sender());
  // The recording thread must finish while the collector holds every request.
  std::atomic<bool> recorded{false};
  std::thread producer([&] {
    for (int i = 0; i < 50; ++i) ex.record(escalated());
    recorded = true;
  });
  const bool finished = poll_until([&] { return recorded.load(); }, 10'000);
  col.release();
  producer.join();
  CHECK(finished);
  // At most one trace in the stalled export and queue_size waiting: the rest dropped.
  CHECK(ex.spans_dropped() >= (50 - 1 - 4) * 5);
  ex.shutdown(2'000);
  CHECK(ex.spans_dropped() + ex.spans_exported() == 50 * 5);
  CHECK(col.spans_received() == ex.spans_exported());
}

TEST_CASE("otlp exporter: 503 with Retry-After is retried after that delay, a 400 is not retried") {
  FakeCollector col;
  col.script = {SendResult{503, "busy", 300}, SendResult{200, "", -1}, SendResult{400, "bad", -1}};
  config::OtlpConfig cfg = test_config();
  Exporter ex(cfg, col.sender());
  ex.record(escalated());
  REQUIRE(poll_until([&] { return ex.spans_exported() == 5; }));
  {
    std::lock_guard lock(col.mu);
    REQUIRE(col.times_us.size() == 2);
    CHECK(col.times_us[1] - col.times_us[0] >= 300'000);
  }
  ex.record(escalated());  // answered 400: dropped at once
  REQUIRE(poll_until([&] { return ex.spans_dropped() == 5; }));
  {
    std::lock_guard lock(col.mu);
    CHECK(col.times_us.size() == 3);
  }
  ex.shutdown(2'000);
}

TEST_CASE("otlp exporter: a collector that stays down costs the batch after max_retry_time") {
  FakeCollector col;
  col.script = std::vector<SendResult>(50, SendResult{0, "connection refused", -1});
  config::OtlpConfig cfg = test_config();
  cfg.max_retry_ms = 1'200;  // 0.5 s + 1 s of backoff does not fit: two tries
  Exporter ex(cfg, col.sender());
  ex.record(escalated());
  REQUIRE(poll_until([&] { return ex.spans_dropped() == 5; }));
  {
    std::lock_guard lock(col.mu);
    CHECK(col.received.size() == 2);
  }
  ex.shutdown(0);
  CHECK(ex.spans_exported() == 0);
}

TEST_CASE("otlp exporter: an unsampled trace feeds the metrics but exports no spans") {
  FakeCollector col;
  Exporter ex(test_config(), col.sender());
  router::RequestTrace t = escalated();
  t.sampled = false;
  ex.record(t);
  ex.shutdown(2'000);
  CHECK(col.spans_received() == 0);
  CHECK(ex.metric_exports() == 1);
  ex.record(t);  // after shutdown: ignored, no crash
}

TEST_CASE("otlp exporter: backoff arithmetic, and which answers are retried") {
  CHECK(retry_delay_ms(1, -1) == 500);
  CHECK(retry_delay_ms(2, -1) == 1'000);
  CHECK(retry_delay_ms(5, -1) == 5'000);
  CHECK(retry_delay_ms(30, -1) == 5'000);
  CHECK(retry_delay_ms(1, 2'500) == 2'500);
  CHECK(retryable(SendResult{429, "", -1}));
  CHECK(retryable(SendResult{503, "", -1}));
  CHECK(retryable(SendResult{0, "refused", -1}));
  CHECK(!retryable(SendResult{400, "", -1}));
  CHECK(!retryable(SendResult{500, "", -1}));
}

TEST_CASE("otlp exporter: reconfigure switches the endpoint for the next export and can turn export off") {
  FakeCollector col;
  Exporter ex(test_config(), col.sender());
  ex.record(escalated());
  REQUIRE(poll_until([&] { return ex.spans_exported() == 5; }));

  config::OtlpConfig moved = test_config();
  moved.endpoint = "http://other-collector.invalid";
  ex.reconfigure(moved);
  ex.record(escalated());
  REQUIRE(poll_until([&] { return ex.spans_exported() == 10; }));
  {
    std::lock_guard lock(col.mu);
    REQUIRE(col.received.size() == 2);
    CHECK(col.received[0].first == "http://collector.invalid/v1/traces");
    CHECK(col.received[1].first == "http://other-collector.invalid/v1/traces");
  }

  config::OtlpConfig off = moved;
  off.enabled = false;
  ex.reconfigure(off);
  ex.record(escalated());  // not recorded: no spans, no drop
  config::OtlpConfig on = moved;
  on.traces = false;  // metrics only
  ex.reconfigure(on);
  ex.record(escalated());
  ex.shutdown(2'000);
  CHECK(ex.spans_exported() == 10);
  CHECK(ex.spans_dropped() == 0);
  CHECK(ex.metric_exports() == 1);
  std::lock_guard lock(col.mu);
  REQUIRE(col.received.size() == 3);
  CHECK(col.received[2].first == "http://other-collector.invalid/v1/metrics");
}
