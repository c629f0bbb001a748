#include "config/config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "config/policy_config.h"
#include "config/yaml_reader.h"

namespace frugal::config {
namespace {

// The built-in default, in three parts: the Anthropic provider and its `claude` rule
// are present only when ANTHROPIC_API_KEY is set (and come before the catch-all).
constexpr const char* kDefaultHead = R"(# frugal's built-in default configuration
server:
  listen: ["127.0.0.1:8080"]
data_dir: ./frugal-data
providers:
  openai:
    kind: openai
    base_url: ${OPENAI_BASE_URL:-https://api.openai.com/v1}
    api_key: ${OPENAI_API_KEY:-}
)";
constexpr const char* kDefaultAnthropicProvider = R"(  anthropic:
    kind: anthropic
    base_url: ${ANTHROPIC_BASE_URL:-https://api.anthropic.com}
    api_key: ${ANTHROPIC_API_KEY}
)";
constexpr const char* kDefaultPassthrough = "passthrough:\n";
constexpr const char* kDefaultAnthropicRule = R"(  - { prefix: "claude", provider: anthropic }
)";
constexpr const char* kDefaultCatchAll = R"(  - { prefix: "", provider: openai }
)";

bool anthropic_key_set() {
  const char* key = std::getenv("ANTHROPIC_API_KEY");
  return key && *key;
}

// Bounds of durations (ms) and sizes (bytes): each value a real deployment might want,
// none that overflows a deadline or a size computation downstream.
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kMaxTtl = 365 * kDay;
constexpr int64_t kMinBodyLimit = 1 << 10;
constexpr int64_t kMaxBodyLimit = 1ll << 30;
constexpr int64_t kMaxMemory = 1ll << 40;
constexpr int64_t kMaxDisk = 1ll << 50;
// An engine step's activations grow with its tokens (n_ff floats each, twice): 4096
// prompt tokens per step is 256 MiB of scratch for an 8192-wide FFN.
constexpr int64_t kMaxPrefillChunk = 4096;
// Chunks shrink as 1 / (1 + p * share * weight): beyond ~100 a long prompt prefills
// one token per step; 1000 only bounds typos.
constexpr double kMaxAttentionCostWeight = 1000;

Listener listener_from(const YamlNode& n) {
  auto l = parse_listener(n.as_string());
  if (!l) n.fail(l.error().message);
  return *l;
}

ServerConfig parse_server(const YamlNode& n) {
  n.allow_keys({"listen", "threads", "body_limit", "read_timeout", "idle_timeout", "shutdown_grace",
                "write_timeout", "reuse_port", "watch_interval", "busy_poll"});
  ServerConfig s;
  if (auto l = n.child("listen")) {
    s.listen.clear();
    if (l->is_scalar()) s.listen.push_back(listener_from(*l));
    else for (const auto& item : l->items()) s.listen.push_back(listener_from(item));
    if (s.listen.empty()) l->fail("at least one listen address is required");
  }
  s.threads = static_cast<int>(n.get_int("threads", 0, 0, 256));
  s.body_limit_bytes = n.get_bytes("body_limit", s.body_limit_bytes, kMinBodyLimit, kMaxBodyLimit);
  s.read_timeout_ms = n.get_duration_ms("read_timeout", s.read_timeout_ms, 100, kDay);
  s.idle_timeout_ms = n.get_duration_ms("idle_timeout", s.idle_timeout_ms, 100, kDay);
  s.shutdown_grace_ms = n.get_duration_ms("shutdown_grace", s.shutdown_grace_ms, 0, kHour);
  s.write_timeout_ms = n.get_duration_ms("write_timeout", s.write_timeout_ms, 0, kDay);
  s.reuse_port = n.get_bool("reuse_port", s.reuse_port);
  s.watch_interval_ms = n.get_duration_ms("watch_interval", s.watch_interval_ms, 0, kDay);
  if (auto b = n.child("busy_poll"); b && !b->is_null()) {
    s.busy_poll_us = b->as_duration_us(0, 10'000);
  }
  return s;
}

// An existing, readable file path.
std::string existing_file(const YamlNode& n) {
  const std::string path = n.as_string();
  std::ifstream f(path, std::ios::binary);
  if (path.empty() || !f) n.fail("cannot open " + n.shown());
  return path;
}

void parse_engine(const YamlNode& n, ProviderConfig& p) {
  n.allow_keys({"kind", "model", "draft_model", "threads", "kv_memory", "context_length", "max_batch",
                "draft_tokens", "prefill_chunk", "attention_cost_weight", "default_max_tokens", "timeouts", "retry"});
  p.timeouts = kEngineTimeouts;
  if (auto t = n.child("timeouts")) {
    if (auto c = t->child("connect")) c->fail("does not apply to kind: engine (use first_byte and total)");
    t->allow_keys({"first_byte", "total"});
    p.timeouts.first_byte_ms = t->get_duration_ms("first_byte", p.timeouts.first_byte_ms, 0, kDay);
    p.timeouts.total_ms = t->get_duration_ms("total", p.timeouts.total_ms, 0, kDay);
  }
  EngineSettings& e = p.engine;
  e.model = existing_file(n.required("model"));
  if (auto d = n.child("draft_model"); d && !d->is_null()) e.draft_model = existing_file(*d);
  e.threads = static_cast<int>(n.get_int("threads", e.threads, 0, 1024));
  e.kv_memory_bytes = n.get_bytes("kv_memory", e.kv_memory_bytes, 1 << 20, kMaxMemory);
  e.context_length = static_cast<int>(n.get_int("context_length", e.context_length, 0, 1 << 24));
  e.max_batch = static_cast<int>(n.get_int("max_batch", e.max_batch, 1, 4096));
  e.draft_tokens = static_cast<int>(n.get_int("draft_tokens", e.draft_tokens, 1, 32));
  e.prefill_chunk = static_cast<int>(n.get_int("prefill_chunk", e.prefill_chunk, 1, kMaxPrefillChunk));
  if (auto w = n.child("attention_cost_weight")) {
    e.attention_cost_weight = w->as_double();
    if (e.attention_cost_weight < 0 || e.attention_cost_weight > kMaxAttentionCostWeight)
      w->fail("expected a number in [0, " + std::to_string(static_cast<int>(kMaxAttentionCostWeight)) + "], got " +
              w->shown());
  }
  e.default_max_tokens = static_cast<int>(n.get_int("default_max_tokens", e.default_max_tokens, 0, 1 << 24));
}

ProviderConfig parse_provider(const std::string& name, const YamlNode& n) {
  ProviderConfig p;
  p.name = name;
  const YamlNode kind = n.required("kind");
  const std::string k = kind.as_string();
  if (k == "openai") p.kind = ProviderKind::kOpenAi;
  else if (k == "anthropic") p.kind = ProviderKind::kAnthropic;
  else if (k == "engine") p.kind = ProviderKind::kEngine;
  else kind.fail("unknown provider kind " + kind.shown() + " (expected openai, anthropic or engine)");
  if (p.kind == ProviderKind::kEngine) {
    parse_engine(n, p);
  } else {
    n.allow_keys({"kind", "base_url", "api_key", "timeouts", "retry", "http2", "transport", "headers", "tls",
                  "max_answer", "max_sse_event"});
    const YamlNode url = n.required("base_url");
    p.base_url = url.as_string();
    if (p.base_url.rfind("http://", 0) != 0 && p.base_url.rfind("https://", 0) != 0)
      url.fail("expected an http:// or https:// URL, got " + url.shown());
    while (!p.base_url.empty() && p.base_url.back() == '/') p.base_url.pop_back();
    p.api_key = n.get_string("api_key", "");
    if (auto t = n.child("timeouts")) {
      t->allow_keys({"connect", "first_byte", "total"});
      p.timeouts.connect_ms = t->get_duration_ms("connect", p.timeouts.connect_ms, 0, kHour);
      p.timeouts.first_byte_ms = t->get_duration_ms("first_byte", p.timeouts.first_byte_ms, 0, kDay);
      p.timeouts.total_ms = t->get_duration_ms("total", p.timeouts.total_ms, 0, kDay);
    }
    p.http2 = n.get_bool("http2", p.http2);
    if (auto t = n.child("tls")) {
      t->allow_keys({"ca_file", "verify"});
      p.tls_ca_file = t->get_string("ca_file", "");
      p.tls_verify = t->get_bool("verify", true);
    }
    if (auto t = n.child("transport")) {
      const std::string v = t->as_string();
      if (v == "libcurl") p.builtin_http1 = false;
      else if (v != "auto") t->fail("unknown transport " + t->shown() + " (expected auto or libcurl)");
    }
    if (auto h = n.child("headers"))
      for (const auto& [hk, hv] : h->entries()) p.headers[hk] = hv.as_string();
    p.max_answer_bytes = n.get_bytes("max_answer", p.max_answer_bytes, kMinBodyLimit, kMaxBodyLimit);
    p.max_sse_event_bytes = n.get_bytes("max_sse_event", p.max_sse_event_bytes, kMinBodyLimit, kMaxBodyLimit);
  }
  if (auto r = n.child("retry")) {
    r->allow_keys({"max_attempts", "base_delay", "max_delay"});
    p.retry.max_attempts = static_cast<int>(r->get_int("max_attempts", p.retry.max_attempts, 1, 20));
    p.retry.base_delay_ms = r->get_duration_ms("base_delay", p.retry.base_delay_ms, 0, kHour);
    p.retry.max_delay_ms = r->get_duration_ms("max_delay", p.retry.max_delay_ms, 0, kHour);
  }
  return p;
}

ModelTarget parse_target(const YamlNode& n, const GatewayConfig& cfg) {
  ModelTarget t;
  if (n.is_scalar()) {
    // "provider/model"; the model part may itself contain '/'.
    const std::string s = n.as_string();
    const size_t slash = s.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == s.size())
      n.fail("expected 'provider/model' or {provider, model}, got " + n.shown());
    t.provider = s.substr(0, slash);
    t.model = s.substr(slash + 1);
  } else {
    n.allow_keys({"provider", "model"});
    t.provider = n.required("provider").as_string();
    t.model = n.required("model").as_string();
  }
  if (!cfg.provider(t.provider)) n.fail("unknown provider '" + t.provider + "'");
  return t;
}

bool parse_cache_mode(const YamlNode& n) {
  const std::string m = n.as_string();
  if (m == "all") return true;
  if (m == "deterministic") return false;
  n.fail("expected 'deterministic' or 'all', got " + n.shown());
  return false;
}

CacheConfig parse_cache(const YamlNode& n) {
  n.allow_keys({"enabled", "mode", "ttl", "max_ttl", "memory", "disk", "shared", "auto_prompt_cache", "routes"});
  CacheConfig c;
  c.enabled = n.get_bool("enabled", c.enabled);
  if (auto m = n.child("mode")) c.cache_all = parse_cache_mode(*m);
  c.ttl_ms = n.get_duration_ms("ttl", c.ttl_ms, 0, kMaxTtl);
  c.max_ttl_ms = n.get_duration_ms("max_ttl", c.max_ttl_ms, 0, kMaxTtl);
  c.memory_bytes = n.get_bytes("memory", c.memory_bytes, 0, kMaxMemory);
  c.disk_bytes = n.get_bytes("disk", c.disk_bytes, 0, kMaxDisk);
  c.shared = n.get_bool("shared", c.shared);
  c.auto_prompt_cache = n.get_bool("auto_prompt_cache", c.auto_prompt_cache);
  if (auto r = n.child("routes")) {
    for (const auto& [name, rn] : r->entries()) {
      rn.allow_keys({"enabled", "mode", "ttl", "shared", "auto_prompt_cache"});
      CacheRouteConfig rc;
      if (rn.child("enabled")) rc.enabled = rn.get_bool("enabled", true);
      if (auto m = rn.child("mode")) rc.cache_all = parse_cache_mode(*m);
      if (rn.child("ttl")) rc.ttl_ms = rn.get_duration_ms("ttl", 0, 0, kMaxTtl);
      if (rn.child("shared")) rc.shared = rn.get_bool("shared", false);
      if (rn.child("auto_prompt_cache")) rc.auto_prompt_cache = rn.get_bool("auto_prompt_cache", false);
      c.routes[name] = rc;
    }
  }
  return c;
}

CaptureConfig parse_capture(const YamlNode& n) {
  n.allow_keys({"path", "max_file_size", "max_files", "queue"});
  CaptureConfig c;
  c.path = n.get_string("path", c.path);
  c.max_file_bytes = n.get_bytes("max_file_size", c.max_file_bytes, 4096, 1ll << 40);
  c.max_files = n.get_int("max_files", c.max_files, 1, 1000);
  c.queue = n.get_int("queue", c.queue, 1, 10'000'000);
  return c;
}

std::string http_endpoint(const YamlNode& n, std::string url) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    n.fail("expected an http:// or https:// URL, got " + n.shown());
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// The file's `telemetry: otlp:`; `explicitly_off` is set by `enabled: false`.
OtlpConfig parse_otlp(const YamlNode& n, bool& explicitly_off) {
  n.allow_keys({"enabled", "endpoint", "headers", "service_name", "traces", "metrics", "timeout", "queue_size",
                "batch_size", "flush_interval", "export_interval", "max_retry_time"});
  OtlpConfig o;
  explicitly_off = n.child("enabled") && !n.get_bool("enabled", true);
  if (auto e = n.child("endpoint")) o.endpoint = http_endpoint(*e, e->as_string());
  if (auto h = n.child("headers"))
    for (const auto& [k, v] : h->entries()) o.headers.emplace_back(k, v.as_string());
  o.service_name = n.get_string("service_name", "");
  o.traces = n.get_bool("traces", o.traces);
  o.metrics = n.get_bool("metrics", o.metrics);
  o.timeout_ms = n.get_duration_ms("timeout", o.timeout_ms, 10, kHour);
  o.queue_size = n.get_int("queue_size", o.queue_size, 1, 1'000'000);
  o.batch_size = n.get_int("batch_size", o.batch_size, 1, 100'000);
  o.flush_interval_ms = n.get_duration_ms("flush_interval", o.flush_interval_ms, 1, kHour);
  o.export_interval_ms = n.get_duration_ms("export_interval", o.export_interval_ms, 10, kDay);
  o.max_retry_ms = n.get_duration_ms("max_retry_time", o.max_retry_ms, 0, kHour);
  return o;
}

// The OTEL_* variables fill in what the file left unset.
Result<void> apply_otel_env(OtlpConfig& o, bool explicitly_off, const EnvLookup& env) {
  const auto var = [&](const char* name) {
    auto v = env(name);
    return v && !v->empty() ? v : std::nullopt;
  };
  if (o.endpoint.empty()) {
    if (auto e = var("OTEL_EXPORTER_OTLP_ENDPOINT")) {
      std::string url = *e;
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
        return make_error(ErrorKind::kInvalidRequest,
                          "OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL, got '" + url + "'");
      while (!url.empty() && url.back() == '/') url.pop_back();
      o.endpoint = std::move(url);
    }
  }
  if (auto h = var("OTEL_EXPORTER_OTLP_HEADERS")) {
    auto parsed = parse_otlp_headers(*h);
    if (!parsed) return make_error(ErrorKind::kInvalidRequest, "OTEL_EXPORTER_OTLP_HEADERS: " + parsed.error().message);
    for (auto& header : *parsed) {
      const std::string& k = header.first;  // not a structured binding: clang 14 cannot capture those
      const bool in_file = std::any_of(o.headers.begin(), o.headers.end(), [&](const auto& kv) {
        return kv.first.size() == k.size() &&
               std::equal(k.begin(), k.end(), kv.first.begin(),
                          [](unsigned char a, unsigned char b) { return std::tolower(a) == std::tolower(b); });
      });
      if (!in_file) o.headers.push_back(std::move(header));
    }
  }
  if (o.service_name.empty()) o.service_name = var("OTEL_SERVICE_NAME").value_or("frugal");
  o.enabled = !explicitly_off && !o.endpoint.empty() && (o.traces || o.metrics);
  return {};
}

TelemetryConfig parse_telemetry(const YamlNode& n, const std::string& source, bool& otlp_off) {
  n.allow_keys({"metrics", "access_log", "otlp"});
  TelemetryConfig t;
  if (auto m = n.child("metrics")) {
    m->allow_keys({"enabled", "max_label_values"});
    t.metrics = m->get_bool("enabled", t.metrics);
    t.max_label_values = m->get_int("max_label_values", t.max_label_values, 1, 100'000);
  }
  if (auto a = n.child("access_log")) {
    const std::string v = a->as_string();
    if (v.empty()) a->fail("expected stdout, off or a file path");
    if (v == "off") {
      t.access_log.clear();
    } else if (v == "stdout") {
      t.access_log = v;
    } else {
      std::filesystem::path path(v);
      if (path.is_relative() && !source.empty() && source.front() != '<')
        path = std::filesystem::path(source).parent_path() / path;
      t.access_log = path.lexically_normal().string();
    }
  }
  if (auto o = n.child("otlp")) t.otlp = parse_otlp(*o, otlp_off);
  return t;
}

// auth, admin, cors, limits, shared_state (docs/security.md).
void parse_identity(const YamlNode& root, GatewayConfig& cfg) {
  if (auto a = root.child("auth")) {
    const std::string v = a->as_string();
    if (v == "required") cfg.auth = AuthMode::kRequired;
    else if (v == "off") cfg.auth = AuthMode::kOff;
    else a->fail("expected 'required' or 'off', got " + a->shown());
  }
  if (auto a = root.child("admin")) {
    a->allow_keys({"listen", "token", "allowed_hosts"});
    if (auto l = a->child("listen")) cfg.admin.listen = listener_from(*l);
    cfg.admin.token = a->get_string("token", "");
    if (auto h = a->child("allowed_hosts"))
      for (const auto& item : h->items()) cfg.admin.allowed_hosts.push_back(item.as_string());
  }
  if (!cfg.admin.token.empty() && !cfg.admin_token.empty() && cfg.admin.token != cfg.admin_token)
    root.required("admin").required("token").fail("differs from admin_token; set one of them");
  if (cfg.admin.token.empty()) cfg.admin.token = cfg.admin_token;
  cfg.admin_token = cfg.admin.token;
  if (auto c = root.child("cors")) {
    c->allow_keys({"allowed_origins"});
    if (auto o = c->child("allowed_origins"))
      for (const auto& item : o->items()) cfg.cors_allowed_origins.push_back(item.as_string());
  }
  if (auto l = root.child("limits")) {
    l->allow_keys({"window", "teams", "estimate"});
    LimitsConfig& lc = cfg.limits;
    lc.window_ms = l->get_duration_ms("window", lc.window_ms, 10, kDay);
    if (auto t = l->child("teams")) {
      for (const auto& [team, tn] : t->entries()) {
        tn.allow_keys({"rpm", "tpm", "max_streams"});
        TeamLimits tl;
        tl.rpm = tn.get_int("rpm", 0, 0, 1'000'000'000);
        tl.tpm = tn.get_int("tpm", 0, 0, 1'000'000'000'000);
        tl.max_streams = tn.get_int("max_streams", 0, 0, 1'000'000);
        lc.teams[team] = tl;
      }
    }
    if (auto e = l->child("estimate")) {
      e->allow_keys({"output_tokens", "usd"});
      lc.estimate_output_tokens = e->get_int("output_tokens", lc.estimate_output_tokens, 0, 10'000'000);
      if (auto u = e->child("usd")) {
        auto m = parse_usd_micros(u->as_string());
        if (!m) u->fail(m.error().message);
        lc.estimate_request_micros = *m;
      }
    }
  }
  if (auto s = root.child("shared_state")) {
    SharedStateConfig& sc = cfg.shared_state;
    if (s->is_scalar()) {
      sc.url = s->as_string();
    } else {
      s->allow_keys({"url", "on_failure", "timeout", "shared_cache", "cache_ttl", "cache_entry_bytes",
                     "reservation_ttl", "poll"});
      sc.url = s->get_string("url", "");
      if (auto f = s->child("on_failure")) {
        const std::string v = f->as_string();
        if (v == "open") sc.fail_open = true;
        else if (v == "closed") sc.fail_open = false;
        else f->fail("expected 'open' or 'closed', got " + f->shown());
      }
      sc.timeout_ms = s->get_duration_ms("timeout", sc.timeout_ms, 1, 60'000);
      sc.shared_cache = s->get_bool("shared_cache", sc.shared_cache);
      sc.cache_ttl_ms = s->get_duration_ms("cache_ttl", sc.cache_ttl_ms, 1000, 30 * kDay);
      sc.cache_entry_bytes = s->get_bytes("cache_entry_bytes", sc.cache_entry_bytes, 1024, 64 << 20);
      sc.reservation_ttl_ms = s->get_duration_ms("reservation_ttl", sc.reservation_ttl_ms, 1000, kDay);
      sc.poll_ms = s->get_duration_ms("poll", sc.poll_ms, 10, 10'000);
    }
    if (!sc.url.empty() && sc.url.rfind("redis://", 0) != 0)
      s->fail("expected a redis://host:port URL, got '" + sc.url + "'");
  }
}

GatewayConfig parse_root(const YamlNode& root, const std::string& source, bool& otlp_off) {
  GatewayConfig cfg;
  cfg.source = source;
  if (root.is_null()) root.fail("the configuration is empty");
  root.allow_keys({"server", "data_dir", "providers", "models", "passthrough", "policy", "teams", "cache",
                   "admin_token", "telemetry", "capture", "auth", "admin", "cors", "limits", "shared_state"});
  if (auto s = root.child("server")) cfg.server = parse_server(*s);
  cfg.data_dir = root.get_string("data_dir", cfg.data_dir);
  if (auto c = root.child("cache")) cfg.cache = parse_cache(*c);
  if (auto c = root.child("capture")) cfg.capture = parse_capture(*c);
  cfg.admin_token = root.get_string("admin_token", "");
  parse_identity(root, cfg);
  if (auto t = root.child("telemetry")) cfg.telemetry = parse_telemetry(*t, source, otlp_off);
  if (auto p = root.child("providers"))
    for (const auto& [name, node] : p->entries()) cfg.providers.push_back(parse_provider(name, node));
  if (auto m = root.child("models")) {
    for (const auto& [name, node] : m->entries()) {
      ModelAlias a;
      a.name = name;
      if (node.is_sequence()) {
        for (const auto& item : node.items()) a.targets.push_back(parse_target(item, cfg));
      } else if (node.is_scalar() || !node.child("replicas")) {
        a.targets.push_back(parse_target(node, cfg));
      } else {
        node.allow_keys({"replicas", "fallbacks", "load_slack"});
        const YamlNode reps = node.required("replicas");
        for (const auto& item : reps.items()) a.replicas.push_back(parse_target(item, cfg));
        if (a.replicas.size() < 2) reps.fail("replicas needs at least two targets");
        if (auto f = node.child("fallbacks"))
          for (const auto& item : f->items()) a.targets.push_back(parse_target(item, cfg));
        if (auto e = node.child("load_slack")) {
          a.replica_load_slack = e->as_double();
          if (a.replica_load_slack <= 0 || a.replica_load_slack > 10) e->fail("expected a number in (0, 10]");
        }
      }
      if (a.targets.empty() && a.replicas.empty()) node.fail("a model needs at least one target");
      cfg.aliases.push_back(std::move(a));
    }
  }
  if (auto p = root.child("passthrough")) {
    for (const auto& item : p->items()) {
      item.allow_keys({"prefix", "provider"});
      PassthroughRule r;
      r.prefix = item.get_string("prefix", "");
      const YamlNode prov = item.required("provider");
      r.provider = prov.as_string();
      if (!cfg.provider(r.provider)) prov.fail("unknown provider '" + r.provider + "'");
      cfg.passthrough.push_back(std::move(r));
    }
  }
  if (auto p = root.child("policy")) {
    std::filesystem::path path(p->as_string());
    if (path.empty()) p->fail("expected the path of a policy file");
    if (path.is_relative() && !source.empty() && source.front() != '<') path = std::filesystem::path(source).parent_path() / path;
    cfg.policy_path = path.lexically_normal().string();
  }
  if (auto t = root.child("teams")) {
    for (const auto& [team, keys] : t->entries()) {
      for (const auto& k : keys.items()) {
        const std::string id = k.as_string();
        if (!cfg.key_teams.emplace(id, team).second) k.fail("key '" + id + "' is already in another team");
      }
    }
  }
  return cfg;
}

}  // namespace

const ProviderConfig* GatewayConfig::provider(const std::string& name) const {
  for (const auto& p : providers)
    if (p.name == name) return &p;
  return nullptr;
}

Result<Listener> parse_listener(const std::string& s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos)
    return make_error(ErrorKind::kInvalidRequest, "expected HOST:PORT, got '" + s + "'");
  Listener l;
  l.host = s.substr(0, colon);
  if (l.host.size() >= 2 && l.host.front() == '[' && l.host.back() == ']')
    l.host = l.host.substr(1, l.host.size() - 2);
  if (l.host.empty()) l.host = "0.0.0.0";
  const std::string port = s.substr(colon + 1);
  char* end = nullptr;
  const long v = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || v < 0 || v > 65535)
    return make_error(ErrorKind::kInvalidRequest, "invalid port in '" + s + "'");
  l.port = static_cast<uint16_t>(v);
  return l;
}

Result<std::vector<std::pair<std::string, std::string>>> parse_otlp_headers(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || trim(item.substr(0, eq)).empty())
      return make_error(ErrorKind::kInvalidRequest, "expected key=value pairs separated by commas");
    std::string value;
    const std::string_view raw = trim(item.substr(eq + 1));
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '%' && i + 2 < raw.size() && hex(raw[i + 1]) >= 0 && hex(raw[i + 2]) >= 0) {
        value += static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2]));
        i += 2;
      } else {
        value += raw[i];
      }
    }
    for (char c : value)
      if (c == '\r' || c == '\n' || c == '\0')
        return make_error(ErrorKind::kInvalidRequest, "a header value contains a line break");
    out.emplace_back(std::string(trim(item.substr(0, eq))), std::move(value));
  }
  return out;
}

Result<GatewayConfig> load_config_text(const std::string& text, const std::string& source) {
  const EnvLookup env = process_env();
  try {
    const YAML::Node doc = parse_yaml(text, source);
    bool otlp_off = false;
    GatewayConfig cfg = parse_root(YamlNode(doc, "", &source, &env), source, otlp_off);
    if (auto r = apply_otel_env(cfg.telemetry.otlp, otlp_off, env); !r) return std::move(r).error();
    return cfg;
  } catch (const ConfigException& e) {
    return make_error(ErrorKind::kInvalidRequest, e.what());
  } catch (const YAML::Exception& e) {
    return make_error(ErrorKind::kInvalidRequest, source + ": " + e.what());
  }
}

Result<GatewayConfig> load_config_file(const std::string& path) {
  auto text = read_config_file(path, "configuration file");
  if (!text) return std::move(text).error();
  return load_config_text(*text, path);
}

std::string default_config_yaml() {
  const bool anthropic = anthropic_key_set();
  std::string out = kDefaultHead;
  if (anthropic) out += kDefaultAnthropicProvider;
  out += kDefaultPassthrough;
  if (anthropic) out += kDefaultAnthropicRule;
  out += kDefaultCatchAll;
  return out;
}

Result<GatewayConfig> load_default_config() {
  return load_config_text(default_config_yaml(), "<built-in default>");
}

}  // namespace frugal::config
