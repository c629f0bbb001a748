#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "config/policy_config.h"

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
      {"server:\n  busy_poll: 1h\n", "key 'server.busy_poll': unknown duration unit in '1h' (use us, ms or s)"},
      {"server:\n  busy_poll: 20ms\n", "t.yaml:2:14: key 'server.busy_poll': expected a duration from 0 to 10ms, got '20ms'"},
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
                                "    max_batch: 8\n    draft_tokens: 5\n    default_max_tokens: 300\n"
                                "    prefill_chunk: 128\n    attention_cost_weight: 2.5\n"
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
  CHECK(p->engine.default_max_tokens == 300);
  CHECK(p->engine.prefill_chunk == 128);
  CHECK(p->engine.attention_cost_weight == 2.5);
  CHECK(c->aliases.at(0).targets.at(0).model == "llama-2-tiny-random");

  auto d = load_config_text("providers:\n  local: { kind: engine, model: " + gguf + " }\n", "e.yaml");
  REQUIRE(d.ok());
  CHECK(d->provider("local")->engine.draft_model.empty());
  CHECK(d->provider("local")->engine.kv_memory_bytes == 512ll << 20);
  CHECK(d->provider("local")->engine.threads == 0);
  CHECK(d->provider("local")->engine.default_max_tokens == 4096);
  CHECK(d->provider("local")->engine.prefill_chunk == 64);
  CHECK(d->provider("local")->engine.attention_cost_weight == 4.0);
  auto z = load_config_text("providers:\n  local: { kind: engine, model: " + gguf + ", attention_cost_weight: 0 }\n",
                            "e.yaml");
  REQUIRE_MESSAGE(z.ok(), (z.ok() ? "" : z.error().message));
  CHECK(z->provider("local")->engine.attention_cost_weight == 0.0);  // chunks count tokens only
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
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    default_max_tokens: -1\n",
       "key 'providers.l.default_max_tokens': expected an integer in [0, 16777216]"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    kv_memory: 1KiB\n",
       "key 'providers.l.kv_memory': expected a size from 1MiB to 1TiB, got '1KiB'"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    base_url: http://x\n",
       "e.yaml:5:5: key 'providers.l.base_url': unknown key"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    max_batch: 0\n",
       "e.yaml:5:16: key 'providers.l.max_batch'"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    prefill_chunk: 0\n",
       "e.yaml:5:20: key 'providers.l.prefill_chunk': expected an integer in [1, 4096], got '0'"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    prefill_chunk: 5000\n",
       "key 'providers.l.prefill_chunk': expected an integer in [1, 4096], got '5000'"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    prefill_chunk: 1.5\n",
       "key 'providers.l.prefill_chunk': expected an integer, got '1.5'"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    attention_cost_weight: -1\n",
       "e.yaml:5:28: key 'providers.l.attention_cost_weight': expected a number in [0, 1000], got '-1'"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    attention_cost_weight: lots\n",
       "key 'providers.l.attention_cost_weight': expected a number, got 'lots'"},
      {"providers:\n  l:\n    kind: engine\n    model: " + gguf + "\n    attention_cost_weight: 1e9\n",
       "key 'providers.l.attention_cost_weight': expected a number in [0, 1000], got '1e9'"},
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

TEST_CASE("durations and sizes need a unit and a value in range, checked before any overflow") {
  struct Case { const char* yaml; const char* expect; };
  const Case cases[] = {
      {"server:\n  read_timeout: 30\n",
       "t.yaml:2:17: key 'server.read_timeout': expected a duration with a unit (e.g. 30s, 500ms), got '30': a "
       "bare number has no unit"},
      {"server:\n  body_limit: 1048576\n",
       "t.yaml:2:15: key 'server.body_limit': expected a size with a unit (e.g. 4MiB, 512KiB), got '1048576'"},
      {"providers:\n  p: { kind: openai, base_url: http://x, timeouts: { total: 600000 } }\n",
       "key 'providers.p.timeouts.total': expected a duration with a unit"},
      // Past int64 once multiplied: refused, not wrapped to a negative or tiny value.
      {"server:\n  read_timeout: 9223372036854775807h\n",
       "key 'server.read_timeout': expected a duration from 100ms to 1d, got '9223372036854775807h'"},
      {"server:\n  idle_timeout: 99999999999999999999999999d\n", "key 'server.idle_timeout': expected a duration from"},
      {"server:\n  body_limit: 17179869184GiB\n", "key 'server.body_limit': expected a size from 1KiB to 1GiB"},
      {"server:\n  body_limit: 2GiB\n", "key 'server.body_limit': expected a size from 1KiB to 1GiB, got '2GiB'"},
      {"server:\n  read_timeout: 1ms\n", "key 'server.read_timeout': expected a duration from 100ms to 1d"},
      {"server:\n  shutdown_grace: -5s\n", "key 'server.shutdown_grace': expected a duration with a unit"},
      {"cache:\n  ttl: 400d\n", "key 'cache.ttl': expected a duration from 0 to 365d, got '400d'"},
      {"cache:\n  memory: 2TiB\n", "key 'cache.memory': expected a size from 0 to 1TiB"},
      {"providers:\n  p: { kind: openai, base_url: http://x, retry: { max_delay: 2h } }\n",
       "key 'providers.p.retry.max_delay': expected a duration from 0 to 1h"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.yaml);
    auto r = load_config_text(c.yaml, "t.yaml");
    REQUIRE(!r.ok());
    CHECK_MESSAGE(r.error().message.find(c.expect) != std::string::npos, r.error().message);
  }
  // A bare 0 needs no unit; fractions and every unit convert exactly.
  auto ok = load_config_text(
      "server:\n  busy_poll: 0\n  read_timeout: 1.5s\n  idle_timeout: 1d\n  body_limit: 1GiB\n"
      "  shutdown_grace: 0\ncache:\n  ttl: 0\n  disk: 10GB\n",
      "t.yaml");
  REQUIRE_MESSAGE(ok.ok(), (ok.ok() ? "" : ok.error().message));
  CHECK(ok->server.busy_poll_us == 0);
  CHECK(ok->server.read_timeout_ms == 1500);
  CHECK(ok->server.idle_timeout_ms == 86'400'000);
  CHECK(ok->server.body_limit_bytes == 1ll << 30);
  CHECK(ok->server.shutdown_grace_ms == 0);
  CHECK(ok->cache.ttl_ms == 0);
  CHECK(ok->cache.disk_bytes == 10'000'000'000);
  // Policies follow the same rule.
  auto p = load_policy_text("request_types:\n  - name: chat\nroutes:\n  chat:\n    cascade: [ { model: m } ]\n"
                            "    cache: { ttl: 3600 }\n",
                            "p.yaml");
  REQUIRE(!p.ok());
  CHECK_MESSAGE(p.error().message.find("key 'routes.chat.cache.ttl': expected a duration with a unit") !=
                    std::string::npos,
                p.error().message);
}

TEST_CASE("config errors never print a value from the environment or a credential") {
  const std::string secret = "sk-live-0123456789abcdef";
  setenv("FRUGAL_T_SECRET", secret.c_str(), 1);
  setenv("FRUGAL_T_SECRET_SECONDS", ("5" + secret).c_str(), 1);
  struct Case { const char* yaml; const char* expect; };
  const Case cases[] = {
      {"server:\n  read_timeout: ${FRUGAL_T_SECRET}\n", "got '${FRUGAL_T_SECRET}'"},
      {"server:\n  read_timeout: ${FRUGAL_T_SECRET_SECONDS}\n",
       "unknown duration unit in '${FRUGAL_T_SECRET_SECONDS}'"},
      {"server:\n  threads: ${FRUGAL_T_SECRET}\n", "expected an integer, got '${FRUGAL_T_SECRET}'"},
      {"server:\n  listen: [\"${FRUGAL_T_SECRET}\"]\n", "key 'server.listen[0]'"},
      {"providers:\n  p: { kind: openai, base_url: \"${FRUGAL_T_SECRET}\" }\n",
       "expected an http:// or https:// URL, got '${FRUGAL_T_SECRET}'"},
      {"providers:\n  p: { kind: \"${FRUGAL_T_SECRET}\", base_url: http://x }\n",
       "unknown provider kind '${FRUGAL_T_SECRET}'"},
      {"providers:\n  p: { kind: openai, base_url: http://x, transport: \"x${FRUGAL_T_SECRET}\" }\n",
       "unknown transport 'x${FRUGAL_T_SECRET}'"},
      {"cache:\n  mode: ${FRUGAL_T_SECRET}\n", "got '${FRUGAL_T_SECRET}'"},
      // A credential written in the file is not printed either.
      {"providers:\n  p: { kind: openai, base_url: http://x, api_key: \"sk-live-literal-${oops\" }\n",
       "key 'providers.p.api_key': unterminated '${' in '<redacted>'"},
      {"admin_token: \"tok-literal-${FRUGAL_T_SECRET\"\n", "key 'admin_token': unterminated '${' in '<redacted>'"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.yaml);
    auto r = load_config_text(c.yaml, "t.yaml");
    REQUIRE(!r.ok());
    CHECK_MESSAGE(r.error().message.find(c.expect) != std::string::npos, r.error().message);
    CHECK_MESSAGE(r.error().message.find("0123456789abcdef") == std::string::npos, r.error().message);
    CHECK_MESSAGE(r.error().message.find("literal") == std::string::npos, r.error().message);
  }
  unsetenv("FRUGAL_T_SECRET");
  unsetenv("FRUGAL_T_SECRET_SECONDS");
}

TEST_CASE("config and policy files: only regular files of at most 4 MiB are read") {
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& dev : {"/dev/zero", "/dev/urandom"}) {
    auto c = load_config_file(dev);
    REQUIRE(!c.ok());
    CHECK_MESSAGE(c.error().message == std::string(dev) + ": cannot read configuration file: not a regular file",
                  c.error().message);
    auto p = load_policy_file(dev);
    REQUIRE(!p.ok());
    CHECK_MESSAGE(p.error().message == std::string(dev) + ": cannot read policy file: not a regular file",
                  p.error().message);
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));  // refused, not read

  const auto dir = std::filesystem::temp_directory_path() / ("frugal-config-files-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto d = load_config_file(dir.string());
  REQUIRE(!d.ok());
  CHECK(d.error().message.find("not a regular file") != std::string::npos);
  // A FIFO with no writer: refused without blocking.
  const auto fifo = dir / "fifo";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  auto f = load_policy_file(fifo.string());
  REQUIRE(!f.ok());
  CHECK(f.error().message.find("not a regular file") != std::string::npos);

  const auto big = dir / "big.yaml";
  {
    std::ofstream out(big);
    out << "# " << std::string((4 << 20) + 10, 'x') << "\n";
  }
  auto b = load_config_file(big.string());
  REQUIRE(!b.ok());
  CHECK_MESSAGE(b.error().message == big.string() + ": cannot read configuration file: larger than 4 MiB",
                b.error().message);
  auto bp = load_policy_file(big.string());
  REQUIRE(!bp.ok());
  CHECK(bp.error().message.find("larger than 4 MiB") != std::string::npos);

  auto m = load_config_file((dir / "missing.yaml").string());
  REQUIRE(!m.ok());
  CHECK(m.error().kind == frugal::ErrorKind::kNotFound);

  const auto good = dir / "ok.yaml";
  std::ofstream(good) << "server:\n  read_timeout: 5s\n";
  auto g = load_config_file(good.string());
  REQUIRE_MESSAGE(g.ok(), (g.ok() ? "" : g.error().message));
  CHECK(g->server.read_timeout_ms == 5000);
  std::filesystem::remove_all(dir);
}

TEST_CASE("telemetry: metrics on and the access log off by default, both configurable") {
  auto d = load_config_text("providers: {}\n", "/etc/frugal/frugal.yaml");
  REQUIRE(d.ok());
  CHECK(d->telemetry.metrics);
  CHECK(d->telemetry.max_label_values == 100);
  CHECK(d->telemetry.access_log.empty());

  auto c = load_config_text(
      "telemetry:\n  metrics: { enabled: false, max_label_values: 7 }\n  access_log: logs/access.jsonl\n",
      "/etc/frugal/frugal.yaml");
  REQUIRE_MESSAGE(c.ok(), c.error().message);
  CHECK(!c->telemetry.metrics);
  CHECK(c->telemetry.max_label_values == 7);
  CHECK(c->telemetry.access_log == "/etc/frugal/logs/access.jsonl");  // beside the config file

  auto s = load_config_text("telemetry: { access_log: stdout }\n", "/etc/frugal/frugal.yaml");
  REQUIRE(s.ok());
  CHECK(s->telemetry.access_log == "stdout");
  auto off = load_config_text("telemetry: { access_log: \"off\" }\n", "/etc/frugal/frugal.yaml");
  REQUIRE(off.ok());
  CHECK(off->telemetry.access_log.empty());

  struct Case { const char* yaml; const char* expect; };
  const Case bad[] = {
      {"telemetry:\n  metrics: { max_label_values: 0 }\n", "key 'telemetry.metrics.max_label_values'"},
      {"telemetry:\n  prometheus: true\n", "t.yaml:2:3: key 'telemetry.prometheus': unknown key"},
      {"telemetry:\n  access_log: \"\"\n", "key 'telemetry.access_log': expected stdout, off or a file path"},
  };
  for (const auto& b : bad) {
    CAPTURE(b.yaml);
    auto r = load_config_text(b.yaml, "t.yaml");
    REQUIRE(!r.ok());
    CHECK_MESSAGE(r.error().message.find(b.expect) != std::string::npos, r.error().message);
  }
}

TEST_CASE("identity settings: auth, admin, cors, limits and shared_state parse, mistakes name their key") {
  auto c = load_config_text(R"(auth: required
admin_token: tok
admin: { listen: "127.0.0.1:9901", token: tok, allowed_hosts: [gw.internal] }
cors: { allowed_origins: ["https://app.example.com"] }
limits:
  window: 10s
  teams: { search: { rpm: 100, tpm: 5000 } }
  estimate: { output_tokens: 256, usd: "0.01" }
)",
                            "t.yaml");
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
  CHECK(c->auth == AuthMode::kRequired);
  CHECK(c->admin.listen->port == 9901);
  CHECK(c->admin.token == "tok");
  CHECK(c->admin.allowed_hosts.at(0) == "gw.internal");
  CHECK(c->cors_allowed_origins.at(0) == "https://app.example.com");
  CHECK(c->limits.window_ms == 10'000);
  CHECK(c->limits.teams.at("search").tpm == 5000);
  CHECK(c->limits.estimate_output_tokens == 256);
  CHECK(c->limits.estimate_request_micros == 10'000);
  // The older spelling sets the admin token too.
  CHECK(load_config_text("admin_token: old\n", "t.yaml")->admin.token == "old");
  CHECK(load_config_text("{}\n", "t.yaml")->auth == AuthMode::kAuto);
  auto shared = load_config_text(R"(shared_state:
  url: redis://127.0.0.1:6380
  on_failure: closed
  timeout: 50ms
  poll: 100ms
  reservation_ttl: 2m
  shared_cache: true
  cache_ttl: 10m
  cache_entry_bytes: 64KiB
)",
                                 "t.yaml");
  REQUIRE_MESSAGE(shared.ok(), (shared.ok() ? "" : shared.error().message));
  CHECK(!shared->shared_state.fail_open);
  CHECK(shared->shared_state.timeout_ms == 50);
  CHECK(shared->shared_state.poll_ms == 100);
  CHECK(shared->shared_state.reservation_ttl_ms == 120'000);
  CHECK(shared->shared_state.shared_cache);
  CHECK(shared->shared_state.cache_ttl_ms == 600'000);
  CHECK(shared->shared_state.cache_entry_bytes == 64 * 1024);

  struct Case { const char* yaml; const char* expect; };
  const Case cases[] = {
      {"auth: maybe\n", "t.yaml:1:7: key 'auth': expected 'required' or 'off', got 'maybe'"},
      {"admin_token: a\nadmin: { token: b }\n", "key 'admin.token': differs from admin_token"},
      {"admin: { listen: nowhere }\n", "key 'admin.listen'"},
      {"limits: { teams: { t: { rpm: -1 } } }\n", "key 'limits.teams.t.rpm'"},
      {"limits: { estimate: { usd: \"1e3\" } }\n", "key 'limits.estimate.usd'"},
      {"shared_state: http://x\n", "key 'shared_state': expected a redis://host:port URL"},
      {"shared_state: { url: \"redis://h:1\", reservation_ttl: 10ms }\n", "key 'shared_state.reservation_ttl'"},
      {"shared_state: { url: \"redis://h:1\", cache: true }\n", "shared_state.cache"},
  };
  for (const auto& k : cases) {
    CAPTURE(k.yaml);
    auto r = load_config_text(k.yaml, "t.yaml");
    REQUIRE(!r.ok());
    CHECK_MESSAGE(r.error().message.find(k.expect) != std::string::npos, r.error().message);
  }
}
