#pragma once
// The gateway's configuration as plain validated structs. Loading is the only place
// YAML is read; everything downstream sees these structs.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace frugal::config {

struct Timeouts {
  int64_t connect_ms = 5'000;
  int64_t first_byte_ms = 120'000;  // until the upstream's response headers
  int64_t total_ms = 600'000;
};

// kind: engine — first_byte runs until the first generated token (queueing behind a
// full batch and the prompt's prefill included), total until the last; 0 turns one off;
// there is nothing to connect to. Longer than the HTTP defaults: a CPU prefills tens to
// hundreds of prompt tokens per second and decodes a few to tens per second, so a long
// prompt or a long answer legitimately takes minutes.
inline constexpr Timeouts kEngineTimeouts{.connect_ms = 0, .first_byte_ms = 300'000, .total_ms = 1'800'000};

struct RetryPolicy {
  int max_attempts = 3;          // per target, including the first
  int64_t base_delay_ms = 200;   // exponential backoff base, full jitter
  int64_t max_delay_ms = 5'000;  // cap on one backoff (and on honoured Retry-After)
};

enum class ProviderKind { kOpenAi, kAnthropic, kEngine };

// kind: engine — a GGUF model served in-process (backends/engine/). Its public model
// name is "<provider>/<file stem>" (e.g. local/llama-2-tiny-random).
struct EngineSettings {
  std::string model;            // GGUF path (must exist when the config is loaded)
  std::string draft_model;      // optional: a small model with the same vocabulary that
                                // drafts tokens for speculative decoding
  int threads = 0;              // compute threads; 0 = one per usable CPU
  int64_t kv_memory_bytes = 512ll << 20;  // KV cache bound
  int context_length = 0;       // prompt + completion tokens; 0 = the model's own
  int max_batch = 32;           // sequences decoded together
  int draft_tokens = 4;         // tokens drafted per verify step (with draft_model)
  // Chunked prefill: a prompt advances by at most prefill_chunk tokens of matmul work per
  // engine step, a token at position p counting 1 + p * (its attention's share of the
  // work) * attention_cost_weight (0: tokens only). Smaller chunks keep running streams'
  // inter-token latency lower; larger ones prefill faster.
  int prefill_chunk = 64;
  double attention_cost_weight = 4.0;
  // Completion tokens of a request that sets no max_tokens (at most what the context has
  // left); 0 = the rest of the context window.
  int default_max_tokens = 4096;

  bool operator==(const EngineSettings&) const = default;
};

struct ProviderConfig {
  std::string name;
  ProviderKind kind = ProviderKind::kOpenAi;
  std::string base_url;  // e.g. https://api.openai.com/v1
  std::string api_key;   // empty: no auth header
  Timeouts timeouts;
  RetryPolicy retry;
  bool http2 = true;     // negotiate HTTP/2 over TLS when the server offers it
  std::string tls_ca_file;  // PEM CA bundle to trust instead of the system store (private CAs)
  bool tls_verify = true;   // verify the upstream's certificate and host name
  // Plain http:// base URLs use the built-in HTTP/1.1 client unless this is false
  // (`transport: libcurl`); https always uses libcurl.
  bool builtin_http1 = true;
  std::map<std::string, std::string> headers;  // extra headers sent upstream
  // A non-streamed answer (or error body) larger than this is a failed attempt (502).
  int64_t max_answer_bytes = 64ll << 20;
  // One SSE event (or an unterminated line) larger than this ends the stream with an error.
  int64_t max_sse_event_bytes = 1 << 20;
  EngineSettings engine;  // kind == kEngine only
};

struct ModelTarget {
  std::string provider;
  std::string model;  // the upstream's model name
};

// A public model name served by an ordered list of targets (the first is primary,
// the rest are fallbacks tried when it fails before any byte reached the client).
struct ModelAlias {
  std::string name;
  std::vector<ModelTarget> targets;
  // Interchangeable replicas of one model (e.g. several vLLM servers): a request goes
  // to the replica its prompt prefix hashes to (warm KV / prompt cache), under a load
  // bound; the other replicas are its fallbacks. Empty: `targets` in order.
  std::vector<ModelTarget> replicas;
  double replica_load_slack = 0.25;  // epsilon of consistent hashing with bounded loads
};

// Model names that are not aliases go to the first rule whose prefix matches, with
// the model name unchanged.
struct PassthroughRule {
  std::string prefix;
  std::string provider;
};

struct Listener {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
};

struct ServerConfig {
  std::vector<Listener> listen{Listener{}};
  int threads = 0;                         // I/O threads; 0 = usable CPUs - 1, at least 1
  int64_t body_limit_bytes = 8 << 20;      // request bodies over this get 413
  int64_t read_timeout_ms = 60'000;        // per request header+body read
  int64_t idle_timeout_ms = 120'000;       // keep-alive idle
  int64_t shutdown_grace_ms = 10'000;
  // A write to a client that makes no progress for this long (a client that stopped
  // reading) closes the connection and cancels the upstream call.
  int64_t write_timeout_ms = 30'000;
  // SO_REUSEPORT on the listeners, so that other processes can share the port. Off: a
  // port another process listens on is an error ("address in use").
  bool reuse_port = false;
  // How often the config and policy files are checked for changes (mtime, size,
  // inode) and reloaded; 0 turns the watch off (SIGHUP and POST /admin/reload remain).
  int64_t watch_interval_ms = 1'000;
  // After its last event, an I/O thread polls (instead of sleeping) this long while the
  // gateway has at most one request in flight per I/O thread: a request or an upstream
  // answer that comes within the window skips the wake-up from sleep. -1 = auto
  // (kDefaultBusyPollUs with two or more usable CPUs: affinity and cgroup quota
  // counted; else off); 0 = off.
  int64_t busy_poll_us = -1;
};
inline constexpr int64_t kDefaultBusyPollUs = 100;

// Exact-response cache settings for one route (a policy route, or the requested model
// name when no policy routes the request). Unset fields inherit the global ones.
struct CacheRouteConfig {
  std::optional<bool> enabled;
  std::optional<bool> cache_all;   // true: cache non-deterministic requests too
  std::optional<int64_t> ttl_ms;   // 0 = never expires
  std::optional<bool> shared;
  std::optional<bool> auto_prompt_cache;
};

struct CacheConfig {
  bool enabled = true;
  bool cache_all = false;            // mode: all; default only deterministic requests
  int64_t ttl_ms = 3'600'000;        // 0 = never expires
  // The longest TTL a client may ask for with x-frugal-cache-ttl; 0 = no cap.
  int64_t max_ttl_ms = 86'400'000;
  int64_t memory_bytes = 256 << 20;  // in-memory LRU bound
  int64_t disk_bytes = 1ll << 30;    // RocksDB column family bound (FIFO)
  bool shared = false;               // entries shared across API keys (tenants)
  // Provider prompt caching: Anthropic requests get cache_control breakpoints on the
  // stable prefix (system, tools, earlier turns) when it is long enough to be cached.
  bool auto_prompt_cache = false;
  std::map<std::string, CacheRouteConfig> routes;
};

// `telemetry: otlp:` — OTLP/HTTP protobuf export of spans and metrics (gateway/otlp/).
// The standard OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_SERVICE_NAME fill in what the file leaves unset. A reload applies it
// (Exporter::reconfigure, gateway/otlp/exporter.h).
struct OtlpConfig {
  bool enabled = false;  // resolved: an endpoint is known and `enabled: false` was not said
  std::string endpoint;  // base URL without a trailing '/'; /v1/traces, /v1/metrics appended
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every export
  std::string service_name;  // resolved: the file's, else OTEL_SERVICE_NAME, else "frugal"
  bool traces = true;
  bool metrics = true;
  int64_t timeout_ms = 10'000;          // one export request
  int64_t queue_size = 2048;            // finished requests waiting for span export
  int64_t batch_size = 512;             // most spans in one export request
  int64_t flush_interval_ms = 1'000;    // how long a span waits for a fuller batch
  int64_t export_interval_ms = 60'000;  // metrics
  int64_t max_retry_ms = 30'000;        // retrying a batch on 429/502/503/504 stops after this
  bool operator==(const OtlpConfig&) const = default;
};

// `telemetry:` — what frugal exports besides responses and ledger rows
// (docs/observability.md). A reload applies it, except max_label_values (needs a restart).
struct TelemetryConfig {
  // GET /metrics in the Prometheus text format (docs/PERFORMANCE.md, "Cost of telemetry").
  bool metrics = true;
  // Distinct client-chosen values (models, teams, key ids) kept per metric label; later
  // ones are counted under "other".
  int64_t max_label_values = 100;
  // One JSON line per request: "" off, "stdout", or a file path (appended).
  std::string access_log;
  OtlpConfig otlp;
};

// `capture:` — where routes that capture traffic (a route's `capture:` in the policy)
// write it: JSONL in the replay log format (docs/replay.md), written by a background
// thread, rotated when a file reaches max_file_bytes, at most max_files kept (so at most
// max_file_bytes x max_files on disk).
struct CaptureConfig {
  std::string path;                      // "" → <data_dir>/capture.jsonl
  int64_t max_file_bytes = 64ll << 20;
  int64_t max_files = 4;                 // the live file and its rotations .1 .. .(max_files-1)
  int64_t queue = 10'000;                // lines waiting for the writer; beyond, dropped and counted
};

// `auth:` — who may call the API (docs/security.md). kAuto (unset): a virtual key is
// required once the data directory holds any key; with none, only loopback listeners
// may start (open access on the local machine, as before keys existed).
enum class AuthMode { kAuto, kRequired, kOff };

// `admin:` — the admin plane (/admin/*, /v1/frugal/*, /metrics) on its own listener.
struct AdminConfig {
  // Unset: 127.0.0.1 on the first listener's port + 1 (port 0 when that port is 0).
  std::optional<Listener> listen;
  // Bearer token for the admin plane (compared in constant time); empty: loopback
  // clients only. The older top-level `admin_token` is the same setting.
  std::string token;
  // Host header values accepted besides the admin listener's own address, localhost
  // and loopback literals (DNS-rebinding guard); "host" or "host:port".
  std::vector<std::string> allowed_hosts;
};

// Per-team limits (per key limits are stored with each key: `frugal keys create`).
struct TeamLimits {
  int64_t rpm = 0;          // requests per window; 0 = unlimited
  int64_t tpm = 0;          // tokens (input + output) per window; 0 = unlimited
  int64_t max_streams = 0;  // concurrent streamed requests; 0 = unlimited
};

// `limits:` — request/token buckets and what a budget reservation estimates.
struct LimitsConfig {
  int64_t window_ms = 60'000;  // the "minute" of rpm/tpm (tests shorten or lengthen it)
  std::map<std::string, TeamLimits> teams;
  // A request's budget reservation: its input tokens plus max_tokens (this many when
  // the request sets none) at the first tier's price; or a fixed USD amount per request.
  int64_t estimate_output_tokens = 1024;
  std::optional<int64_t> estimate_request_micros;
};

// `shared_state:` — Redis for limits, budgets, revocations and a shared cache tier
// across replicas (docs/security.md).
struct SharedStateConfig {
  std::string url;        // redis://host:port[/db]; empty: state is per process
  bool fail_open = true;  // `on_failure: open` (local limits, counted) or `closed` (503)
  int64_t timeout_ms = 200;
  bool shared_cache = false;  // an exact-cache tier in Redis
  int64_t cache_ttl_ms = 3'600'000;      // an entry's time in Redis (at most its own TTL)
  int64_t cache_entry_bytes = 1 << 20;   // larger entries stay local
  // A budget reservation's life in Redis: a replica that dies mid-request holds
  // budget at most this long (longer than any request may run).
  int64_t reservation_ttl_ms = 600'000;
  int64_t poll_ms = 200;  // key changes of other replicas are picked up this often
};

struct GatewayConfig {
  std::string source;  // file path, or "<built-in default>"
  ServerConfig server;
  std::string data_dir = "./frugal-data";
  std::vector<ProviderConfig> providers;
  std::vector<ModelAlias> aliases;
  std::vector<PassthroughRule> passthrough;
  // `policy:` — the routing policy file (config/policy_config.h), resolved against the
  // config file's directory. Empty: no policy (requests go to the model they name).
  std::string policy_path;
  // `teams: { team: [key-id, ...] }` — the team of a virtual key id, for attribution
  // and budgets; a listed key's team wins over the x-frugal-team header.
  std::map<std::string, std::string> key_teams;
  CacheConfig cache;
  // Bearer token for /admin/* endpoints; empty: admin endpoints only from loopback.
  // Mirrors admin.token (either spelling sets both).
  std::string admin_token;
  AuthMode auth = AuthMode::kAuto;
  AdminConfig admin;
  // `cors: allowed_origins:` — browser origins that may call the API ("*" = any); a
  // request with any other Origin is refused (403) on every path.
  std::vector<std::string> cors_allowed_origins;
  LimitsConfig limits;
  SharedStateConfig shared_state;
  TelemetryConfig telemetry;
  CaptureConfig capture;

  const ProviderConfig* provider(const std::string& name) const;
};

using EnvFn = std::optional<std::string> (*)(const std::string&);

// Parse and validate. Errors (kInvalidRequest) carry "file:line:col: key 'a.b': what".
Result<GatewayConfig> load_config_file(const std::string& path);
Result<GatewayConfig> load_config_text(const std::string& text, const std::string& source);
// The built-in default: 127.0.0.1:8080, provider `openai` from OPENAI_BASE_URL
// (default the public API) and OPENAI_API_KEY, every model name passed through. When
// ANTHROPIC_API_KEY is set (non-empty), also provider `anthropic` from
// ANTHROPIC_BASE_URL (default https://api.anthropic.com) and that key, with model
// names starting with `claude` routed to it before the OpenAI catch-all.
Result<GatewayConfig> load_default_config();
// The YAML of the default for the current environment (`frugal config default`).
std::string default_config_yaml();

Result<Listener> parse_listener(const std::string& host_port);

// OTEL_EXPORTER_OTLP_HEADERS: "k1=v1,k2=v2" with percent-encoded values; an entry
// without '=' or with an empty key is an error.
Result<std::vector<std::pair<std::string, std::string>>> parse_otlp_headers(std::string_view text);

}  // namespace frugal::config
