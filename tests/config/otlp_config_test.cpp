// telemetry.otlp and the OTEL_* environment variables.
#include <doctest/doctest.h>

#include <cstdlib>

#include "config/config.h"

using namespace frugal::config;

namespace {

struct OtelEnv {
  OtelEnv() { clear(); }
  ~OtelEnv() { clear(); }
  static void clear() {
    unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
    unsetenv("OTEL_SERVICE_NAME");
  }
};

}  // namespace

TEST_CASE("telemetry.otlp: off without an endpoint, every key parsed") {
  OtelEnv env;
  auto none = load_config_text("providers: {p: {kind: openai, base_url: 'http://127.0.0.1:9/v1'}}\n", "t.yaml");
  REQUIRE_MESSAGE(none.ok(), none.error().message);
  CHECK(!none->telemetry.otlp.enabled);
  CHECK(none->telemetry.otlp.service_name == "frugal");

  auto c = load_config_text(R"(telemetry:
  otlp:
    endpoint: http://127.0.0.1:4318/
    headers: {authorization: Bearer abc, x-tenant: t1}
    service_name: gw
    traces: true
    metrics: false
    timeout: 2s
    queue_size: 100
    batch_size: 50
    flush_interval: 200ms
    export_interval: 15s
    max_retry_time: 1m
)",
                            "t.yaml");
  REQUIRE_MESSAGE(c.ok(), c.error().message);
  const OtlpConfig& o = c->telemetry.otlp;
  CHECK(o.enabled);
  CHECK(o.endpoint == "http://127.0.0.1:4318");
  REQUIRE(o.headers.size() == 2);
  CHECK(o.headers[0] == std::pair<std::string, std::string>{"authorization", "Bearer abc"});
  CHECK(o.service_name == "gw");
  CHECK(!o.metrics);
  CHECK(o.timeout_ms == 2'000);
  CHECK(o.queue_size == 100);
  CHECK(o.batch_size == 50);
  CHECK(o.flush_interval_ms == 200);
  CHECK(o.export_interval_ms == 15'000);
  CHECK(o.max_retry_ms == 60'000);
}

TEST_CASE("telemetry.otlp: bad values are refused with the key named") {
  OtelEnv env;
  auto bad_url = load_config_text("telemetry:\n  otlp:\n    endpoint: collector:4318\n", "t.yaml");
  REQUIRE(!bad_url.ok());
  CHECK(bad_url.error().message.find("telemetry.otlp.endpoint") != std::string::npos);
  auto bad_key = load_config_text("telemetry:\n  otlp:\n    endpoit: http://x\n", "t.yaml");
  REQUIRE(!bad_key.ok());
  CHECK(bad_key.error().message.find("endpoit") != std::string::npos);
  auto bad_queue = load_config_text("telemetry:\n  otlp:\n    queue_size: 0\n", "t.yaml");
  CHECK(!bad_queue.ok());
}

TEST_CASE("telemetry.otlp: OTEL_* variables fill in what the file leaves unset") {
  OtelEnv env;
  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/", 1);
  setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret, x-tenant = t2 ,", 1);
  setenv("OTEL_SERVICE_NAME", "from-env", 1);
  auto c = load_default_config();
  REQUIRE_MESSAGE(c.ok(), c.error().message);
  const OtlpConfig& o = c->telemetry.otlp;
  CHECK(o.enabled);
  CHECK(o.endpoint == "http://127.0.0.1:4318");
  REQUIRE(o.headers.size() == 2);
  CHECK(o.headers[0] == std::pair<std::string, std::string>{"api-key", "s=cret"});
  CHECK(o.headers[1] == std::pair<std::string, std::string>{"x-tenant", "t2"});
  CHECK(o.service_name == "from-env");

  // The file wins where it speaks; `enabled: false` turns the variables off.
  auto file = load_config_text(
      "telemetry:\n  otlp:\n    endpoint: http://10.0.0.1:4318\n    service_name: gw\n    headers: {X-Tenant: mine}\n",
      "t.yaml");
  REQUIRE(file.ok());
  CHECK(file->telemetry.otlp.endpoint == "http://10.0.0.1:4318");
  CHECK(file->telemetry.otlp.service_name == "gw");
  REQUIRE(file->telemetry.otlp.headers.size() == 2);  // X-Tenant from the file, api-key from the variable
  CHECK(file->telemetry.otlp.headers[0].second == "mine");
  auto off = load_config_text("telemetry:\n  otlp:\n    enabled: false\n", "t.yaml");
  REQUIRE(off.ok());
  CHECK(!off->telemetry.otlp.enabled);

  setenv("OTEL_EXPORTER_OTLP_HEADERS", "novalue", 1);
  auto bad = load_default_config();
  REQUIRE(!bad.ok());
  CHECK(bad.error().message.find("OTEL_EXPORTER_OTLP_HEADERS") != std::string::npos);
}

TEST_CASE("parse_otlp_headers: pairs, percent-decoding, no line breaks") {
  auto h = parse_otlp_headers("a=1,b=x%20y");
  REQUIRE(h.ok());
  CHECK(h->size() == 2);
  CHECK((*h)[1].second == "x y");
  CHECK(!parse_otlp_headers("a=1%0d%0aInjected: x").ok());
  CHECK(!parse_otlp_headers("=v").ok());
  CHECK(parse_otlp_headers("").ok());
}
