#include <doctest/doctest.h>

#include <cstdlib>

#include "config/config.h"

using namespace frugal::config;

TEST_CASE("the built-in default serves OpenAI from the environment") {
  setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/", 1);
  unsetenv("OPENAI_API_KEY");
  unsetenv("ANTHROPIC_API_KEY");
  auto c = load_default_config();
  REQUIRE(c.ok());
  CHECK(c->server.listen.at(0).host == "127.0.0.1");
  CHECK(c->server.listen.at(0).port == 8080);
  REQUIRE(c->provider("openai") != nullptr);
  CHECK(c->provider("openai")->base_url == "http://127.0.0.1:9/v1");  // trailing slash trimmed
  CHECK(c->provider("openai")->api_key.empty());
  CHECK(c->passthrough.at(0).prefix.empty());
  CHECK(c->provider("anthropic") == nullptr);  // no ANTHROPIC_API_KEY, no Anthropic provider
  CHECK(c->passthrough.size() == 1);
  unsetenv("OPENAI_BASE_URL");
  CHECK(load_default_config()->provider("openai")->base_url == "https://api.openai.com/v1");
}

TEST_CASE("ANTHROPIC_API_KEY adds the anthropic provider and routes claude* to it") {
  setenv("ANTHROPIC_API_KEY", "sk-ant-test", 1);
  setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/", 1);
  auto c = load_default_config();
  REQUIRE(c.ok());
  const ProviderConfig* a = c->provider("anthropic");
  REQUIRE(a != nullptr);
  CHECK(a->kind == ProviderKind::kAnthropic);
  CHECK(a->base_url == "http://127.0.0.1:9");
  CHECK(a->api_key == "sk-ant-test");
  REQUIRE(c->provider("openai") != nullptr);  // still there for everything else
  REQUIRE(c->passthrough.size() == 2);
  CHECK(c->passthrough[0].prefix == "claude");
  CHECK(c->passthrough[0].provider == "anthropic");
  CHECK(c->passthrough[1].prefix.empty());
  CHECK(c->passthrough[1].provider == "openai");
  CHECK(default_config_yaml().find("kind: anthropic") != std::string::npos);

  unsetenv("ANTHROPIC_BASE_URL");
  CHECK(load_default_config()->provider("anthropic")->base_url == "https://api.anthropic.com");
  setenv("ANTHROPIC_API_KEY", "", 1);  // set but empty counts as unset
  CHECK(load_default_config()->provider("anthropic") == nullptr);
  unsetenv("ANTHROPIC_API_KEY");
  CHECK(load_default_config()->provider("anthropic") == nullptr);
  CHECK(default_config_yaml().find("anthropic") == std::string::npos);
}

TEST_CASE("a full config parses") {
  setenv("FRUGAL_T_KEY", "sk-1", 1);
  auto c = load_config_text(R"(
server:
  listen: ["0.0.0.0:9000", "[::1]:9001"]
  body_limit: 2MiB
  read_timeout: 30s
  busy_poll: 50us
providers:
  a: { kind: openai, base_url: "https://x/v1", api_key: "${FRUGAL_T_KEY}",
       timeouts: { connect: 2s, first_byte: 500ms }, retry: { max_attempts: 5 } }
  b: { kind: anthropic, base_url: "https://y", api_key: "sk-ant", headers: { anthropic-beta: "x-2025" } }
  local: { kind: openai, base_url: "http://127.0.0.1:8000/v1", transport: libcurl }
models:
  fast: [a/gpt-4o-mini, "b/claude-haiku"]
  big: { provider: a, model: org/model-with/slashes }
passthrough:
  - { prefix: claude, provider: b }
)", "test.yaml");
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
  CHECK(c->server.listen.size() == 2);
  CHECK(c->server.listen[1].host == "::1");
  CHECK(c->server.body_limit_bytes == 2 * 1024 * 1024);
  CHECK(c->server.read_timeout_ms == 30'000);
  CHECK(c->server.busy_poll_us == 50);
  CHECK(c->provider("a")->api_key == "sk-1");
  CHECK(c->provider("a")->timeouts.first_byte_ms == 500);
  CHECK(c->provider("a")->retry.max_attempts == 5);
  CHECK(c->provider("b")->kind == ProviderKind::kAnthropic);
  CHECK(c->provider("b")->api_key == "sk-ant");
  CHECK(c->provider("b")->headers.at("anthropic-beta") == "x-2025");
  CHECK(c->provider("a")->builtin_http1);
  CHECK_FALSE(c->provider("local")->builtin_http1);
  REQUIRE(c->aliases.size() == 2);
  CHECK(c->aliases[0].targets.size() == 2);
  CHECK(c->aliases[0].targets[1].model == "claude-haiku");
  CHECK(c->aliases[1].targets[0].model == "org/model-with/slashes");
}

TEST_CASE("config errors name file, line, column and key") {
  unsetenv("FRUGAL_T_MISSING");
  struct Case { const char* yaml; const char* expect; };
  const Case cases[] = {
      {"server:\n  listen: [\"x:1\"]\n  bogus: 1\n", "t.yaml:3:3: key 'server.bogus': unknown key"},
      {"server:\n  threads: many\n", "t.yaml:2:12: key 'server.threads': expected an integer"},
      {"providers:\n  p:\n    kind: openai\n    base_url: http://x\n    api_key: ${FRUGAL_T_MISSING}\n",
       "t.yaml:5:14: key 'providers.p.api_key': environment variable 'FRUGAL_T_MISSING' is not set"},
      {"providers:\n  p:\n    kind: grpc\n    base_url: http://x\n", "t.yaml:3:11: key 'providers.p.kind': unknown provider kind 'grpc'"},
      {"providers:\n  p:\n    kind: openai\n", "key 'providers.p': missing required key 'base_url'"},
      {"models:\n  m: [nope/x]\n", "t.yaml:2:7: key 'models.m[0]': unknown provider 'nope'"},
      {"server: [1\n", "t.yaml:2:1: YAML syntax error"},
      {"server:\n  body_limit: 4 lots\n", "key 'server.body_limit': unknown size unit"},
      {"server:\n  busy_poll: 1h\n", "key 'server.busy_poll': unknown duration unit 'h' (use us, ms or s)"},
      {"server:\n  busy_poll: 20ms\n", "t.yaml:2:14: key 'server.busy_poll': expected 0 (off) to 10ms"},
      {"providers:\n  p:\n    kind: openai\n    base_url: http://x\n    transport: h3\n",
       "t.yaml:5:16: key 'providers.p.transport': unknown transport 'h3' (expected auto or libcurl)"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.yaml);
    auto r = load_config_text(c.yaml, "t.yaml");
    REQUIRE(!r.ok());
    CHECK_MESSAGE(r.error().message.find(c.expect) != std::string::npos, r.error().message);
  }
}

TEST_CASE("engine providers: GGUF paths, sizes, limits") {
  const std::string gguf = std::string(FRUGAL_FIXTURES_DIR) + "/llama-2-tiny-random.gguf";
  auto c = load_config_text("providers:\n  local:\n    kind: engine\n    model: " + gguf +
                                "\n    draft_model: " + gguf +
                                "\n    threads: 3\n    kv_memory: 64MiB\n    context_length: 2048\n"
                                "    max_batch: 8\n    draft_tokens: 5\n"
                                "models:\n  tiny: local/llama-2-tiny-random\n",
                            "e.yaml");
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
  const ProviderConfig* p = c->provider("local");
  REQUIRE(p != nullptr);
  CHECK(p->kind == ProviderKind::kEngine);
  CHECK(p->engine.model == gguf);
  CHECK(p->engine.draft_model == gguf);
  CHECK(p->engine.threads == 3);
  CHECK(p->engine.kv_memory_bytes == 64ll << 20);
  CHECK(p->engine.context_length == 2048);
  CHECK(p->engine.max_batch == 8);
  CHECK(p->engine.draft_tokens == 5);
  CHECK(c->aliases.at(0).targets.at(0).model == "llama-2-tiny-random");

  auto d = load_config_text("providers:\n  local: { kind: engine, model: " + gguf + " }\n", "e.yaml");
  REQUIRE(d.ok());
  CHECK(d->provider("local")->engine.draft_model.empty());
  CHECK(d->provider("local")->engine.kv_memory_bytes == 512ll << 20);
  CHECK(d->provider("local")->engine.threads == 0);
  // Engine deadlines: the engine defaults unless set; 0 turns one off.
  CHECK(d->provider("local")->timeouts.first_byte_ms == kEngineTimeouts.first_byte_ms);
  CHECK(d->provider("local")->timeouts.total_ms == kEngineTimeouts.total_ms);
  auto t = load_config_text("providers:\n  local:\n    kind: engine\n    model: " + gguf +
                                "\n    timeouts: { first_byte: 2s, total: 0 }\n",
                            "e.yaml");
  REQUIRE_MESSAGE(t.ok(), (t.ok() ? "" : t.error().message));
  CHECK(t->provider("local")->timeouts.first_byte_ms == 2000);
  CHECK(t->provider("local")->timeouts.total_ms == 0);

  struct Case { std::string yaml; const char* expect; };
  const Case cases[] = {
      {"providers:\n  l:\n    kind: engine\n", "key 'providers.l': missing required key 'model'"},
      {"providers:\n  l:\n    kind: engine\n    model: /no/such.gguf\n",
       "e.yaml:4:12: key 'providers.l.model': cannot open '/no/such.gguf'"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    kv_memory: 12 bananas\n",
       "e.yaml:5:16: key 'providers.l.kv_memory'"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    kv_memory: 1KiB\n",
       "key 'providers.l.kv_memory': must be at least 1MiB"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    base_url: http://x\n",
       "e.yaml:5:5: key 'providers.l.base_url': unknown key"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    max_batch: 0\n",
       "e.yaml:5:16: key 'providers.l.max_batch'"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    timeouts: { connect: 1s }\n",
       "key 'providers.l.timeouts.connect': does not apply to kind: engine"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    timeouts: { idle: 1s }\n",
       "key 'providers.l.timeouts.idle': unknown key"},
  };
  for (const auto& k : cases) {
    CAPTURE(k.yaml);
    auto r = load_config_text(k.yaml, "e.yaml");
    REQUIRE(!r.ok());
    CHECK_MESSAGE(r.error().message.find(k.expect) != std::string::npos, r.error().message);
  }
}

TEST_CASE("listener parsing") {
  CHECK(parse_listener("127.0.0.1:0")->port == 0);
  CHECK(parse_listener(":8080")->host == "0.0.0.0");
  CHECK(!parse_listener("localhost").ok());
  CHECK(!parse_listener("h:99999").ok());
}
