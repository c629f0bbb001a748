// `capture:` in the gateway config and a route's `capture:` in the policy
// (docs/configuration.md, docs/replay.md).
#include <doctest/doctest.h>

#include "config/config.h"
#include "config/policy_config.h"

using namespace frugal::config;

TEST_CASE("capture config: defaults, sizes, and bad values named") {
  auto d = load_config_text("{}", "c.yaml");
  REQUIRE(d);
  CHECK(d->capture.path.empty());
  CHECK(d->capture.max_file_bytes == 64ll << 20);
  CHECK(d->capture.max_files == 4);
  auto c = load_config_text("capture: { path: /tmp/c.jsonl, max_file_size: 1MiB, max_files: 2, queue: 50 }", "c.yaml");
  REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  CHECK(c->capture.path == "/tmp/c.jsonl");
  CHECK(c->capture.max_file_bytes == 1 << 20);
  CHECK(c->capture.max_files == 2);
  CHECK(c->capture.queue == 50);
  auto bad = load_config_text("capture: { max_files: 0 }", "c.yaml");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("capture.max_files") != std::string::npos);
  CHECK_FALSE(load_config_text("capture: { rotate: daily }", "c.yaml"));
}

TEST_CASE("route capture: sample, redact and shadow, validated") {
  const std::string head =
      "prices:\n  m: { input: 1, output: 1 }\nrequest_types:\n  - name: chat\nroutes:\n  chat:\n    cascade:\n"
      "      - model: m\n    capture: ";
  auto p = load_policy_text(head + "{ sample: 0.25, redact: drop, shadow: 0.1 }\n", "p.yaml");
  REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
  CHECK(p->routes[0].capture.sample == doctest::Approx(0.25));
  CHECK(p->routes[0].capture.shadow == doctest::Approx(0.1));
  CHECK(p->routes[0].capture.redact == CaptureRedact::kDrop);
  auto defaults = load_policy_text(head + "{ sample: 1 }\n", "p.yaml");
  REQUIRE(defaults);
  CHECK(defaults->routes[0].capture.redact == CaptureRedact::kHash);
  CHECK(defaults->routes[0].capture.shadow == 0);
  auto over = load_policy_text(head + "{ sample: 1.5 }\n", "p.yaml");
  REQUIRE_FALSE(over);
  CHECK(over.error().message.find("expected a fraction in [0, 1]") != std::string::npos);
  auto redact = load_policy_text(head + "{ sample: 1, redact: mask }\n", "p.yaml");
  REQUIRE_FALSE(redact);
  CHECK(redact.error().message.find("expected hash, drop or none") != std::string::npos);
}
