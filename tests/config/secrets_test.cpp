#include <doctest/doctest.h>

#include <algorithm>

#include "config/secrets.h"

using namespace frugal::config;

TEST_CASE("configured secrets are masked whole and in pieces of 8 bytes or more") {
  const std::vector<std::string> secrets{"sk-proj-ABCDEFGHIJKLMNOP1234", "tok"};
  std::string text = "Incorrect API key provided: sk-proj-ABCDEFGHIJKLMNOP1234. You can find your key...";
  mask_secrets(text, secrets);
  CHECK(text == "Incorrect API key provided: ***. You can find your key...");

  // A truncated echo, and OpenAI's own partly masked form keeping 8+ real bytes.
  text = "key sk-proj-ABCD (truncated) and sk-proj-****************1234 and JKLMNOP1234 end";
  mask_secrets(text, secrets);
  CHECK(text == "key *** (truncated) and *******************1234 and *** end");

  // Pieces shorter than 8 bytes stay; a short secret is masked only whole.
  text = "sk-proj is a prefix; tok is short; token too";
  mask_secrets(text, secrets);
  CHECK(text == "sk-proj is a prefix; *** is short; ***en too");

  text = "nothing to hide";
  mask_secrets(text, secrets);
  CHECK(text == "nothing to hide");
}

TEST_CASE("config_secrets lists api keys and credential-named header values") {
  GatewayConfig cfg;
  ProviderConfig a;
  a.api_key = "sk-one";
  a.headers = {{"X-Api-Key", "two"}, {"anthropic-version", "2023-06-01"}, {"Authorization", "Bearer three"},
               {"X-Session-Token", "four"}};
  ProviderConfig b;  // no key
  cfg.providers = {a, b};
  auto s = config_secrets(cfg);
  std::sort(s.begin(), s.end());
  CHECK(s == std::vector<std::string>{"Bearer three", "four", "sk-one", "two"});
}

TEST_CASE("provider answer and SSE event limits parse with units and are range-checked") {
  auto c = load_config_text(R"(
providers:
  a: { kind: openai, base_url: "http://127.0.0.1:8000/v1", max_answer: 2MiB, max_sse_event: 64KiB }
  b: { kind: openai, base_url: "http://127.0.0.1:8001/v1" }
)",
                            "limits.yaml");
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
  CHECK(c->provider("a")->max_answer_bytes == (2 << 20));
  CHECK(c->provider("a")->max_sse_event_bytes == (64 << 10));
  CHECK(c->provider("b")->max_answer_bytes == (64ll << 20));
  CHECK(c->provider("b")->max_sse_event_bytes == (1 << 20));
  for (const char* bad : {"max_answer: 0", "max_sse_event: 10", "max_answer: 2TiB"}) {
    CAPTURE(bad);
    auto r = load_config_text(std::string("providers:\n  a: { kind: openai, base_url: \"http://h/v1\", ") + bad + " }\n",
                              "bad.yaml");
    CHECK_FALSE(r.ok());
  }
}
