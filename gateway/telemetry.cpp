#include "gateway/telemetry.h"

#include "config/secrets.h"
#include "core/log.h"
#include "gateway/metric_points.h"
#include "cache/exact_cache.h"
#include "gateway/server.h"
#include "gateway/shared_state.h"

namespace frugal::gateway {

Telemetry::Telemetry(const config::TelemetryConfig& cfg)
    : metrics_enabled_(cfg.metrics), metrics_(static_cast<size_t>(cfg.max_label_values)) {}

Result<std::unique_ptr<Telemetry>> Telemetry::open(const config::TelemetryConfig& cfg) {
  std::unique_ptr<Telemetry> t(new Telemetry(cfg));
  FRUGAL_TRY(t->reconfigure(cfg));
  return t;
}

Result<void> Telemetry::reconfigure(const config::TelemetryConfig& cfg) {
  std::lock_guard lock(reconfigure_mu_);
  if (cfg.access_log.empty()) {
    log_on_.store(nullptr, std::memory_order_release);
    if (log_) FRUGAL_TRY(log_->reopen(""));  // writes what was buffered, closes the file
  } else if (!log_) {
    auto log = AccessLog::open(cfg.access_log);
    if (!log) return std::move(log).error();
    log_ = std::move(*log);
    log_made_.store(log_.get(), std::memory_order_release);
    log_on_.store(log_.get(), std::memory_order_release);
  } else {
    FRUGAL_TRY(log_->reopen(cfg.access_log));
    log_on_.store(log_.get(), std::memory_order_release);
  }
  metrics_enabled_.store(cfg.metrics, std::memory_order_relaxed);
  return {};
}

int64_t Telemetry::access_log_dropped() const {
  const AccessLog* l = log_made_.load(std::memory_order_acquire);
  return l ? l->dropped() : 0;
}

void Telemetry::record(const router::RequestTrace& t, const config::GatewayConfig& cfg) {
  if (log::enabled(log::Level::kWarn)) {
    std::vector<std::string> warnings = upstream_warnings(t);
    if (!warnings.empty()) {
      const auto secrets = config::config_secrets(cfg);
      for (std::string& w : warnings) {
        config::mask_secrets(w, secrets);  // an upstream's error text may echo its key
        log::warn(w);
      }
    }
  }
  if (metrics_enabled()) metrics_.record(metric_points(t), cfg);
  if (AccessLog* log = access_log()) log->add(access_log_line(t));
}

namespace {

void budget_gauges(std::string& out, const Snapshot& snap) {
  PromText w(out);
  w.family("frugal_budget_spend_usd", "gauge", "USD spent in the budget's current window.");
  std::vector<policies::BudgetStatus> budgets;
  if (snap.budgets) budgets = snap.budgets->snapshot();
  std::string l;
  for (const auto& b : budgets) {
    l.clear();
    append_label(l, "budget", b.name);
    w.sample("frugal_budget_spend_usd", l, b.spent.to_usd_string());
  }
  w.family("frugal_budget_limit_usd", "gauge",
           "The budget's limit per window, by kind (soft, hard).");
  for (const auto& b : budgets) {
    for (const auto& [kind, v] :
         {std::pair{"soft", b.soft}, std::pair{"hard", b.hard}}) {
      if (!v) continue;
      l.clear();
      append_label(l, "budget", b.name);
      l += ',';
      append_label(l, "limit", kind);
      w.sample("frugal_budget_limit_usd", l, v->to_usd_string());
    }
  }
  w.family("frugal_budget_window_end_seconds", "gauge",
           "When the budget's current window ends (Unix time).");
  for (const auto& b : budgets) {
    l.clear();
    append_label(l, "budget", b.name);
    w.sample("frugal_budget_window_end_seconds", l,
             static_cast<double>(b.window_end_us / 1'000'000));
  }
}

void engine_gauges(std::string& out, const EngineRegistry& engines) {
  const auto all = engines.all();
  struct Row {
    std::string labels;
    engine::EngineStats s;
  };
  std::vector<Row> rows;
  for (const auto& [provider, svc] : all) {
    Row r;
    append_label(r.labels, "provider", provider);
    r.labels += ',';
    append_label(r.labels, "model", provider + "/" + svc->model_name());
    r.s = svc->stats();
    rows.push_back(std::move(r));
  }
  PromText w(out);
  const auto family = [&](const char* name, const char* type, const char* help, auto value) {
    w.family(name, type, help);
    for (const Row& r : rows) w.sample(name, r.labels, static_cast<double>(value(r.s)));
  };
  using S = engine::EngineStats;
  family("frugal_engine_prefill_tokens_total", "counter",
         "Prompt tokens the engine ran through the model.",
         [](const S& s) { return s.prefill_tokens_computed; });
  family("frugal_engine_prefix_tokens_reused_total", "counter",
         "Prompt tokens attached from cached KV blocks instead of prefilled.",
         [](const S& s) { return s.prompt_tokens_reused; });
  family("frugal_engine_decode_tokens_total", "counter", "Tokens the engine generated.",
         [](const S& s) { return s.decode_tokens; });
  family("frugal_engine_kv_blocks_used", "gauge", "KV-cache blocks held by running sequences.",
         [](const S& s) { return s.kv.used_blocks; });
  family("frugal_engine_kv_blocks_total", "gauge", "KV-cache blocks in the engine's pool.",
         [](const S& s) { return s.kv.n_blocks; });
  family("frugal_engine_running_requests", "gauge", "Sequences in the running batch.",
         [](const S& s) { return s.running; });
  family("frugal_engine_waiting_requests", "gauge", "Requests queued for the batch.",
         [](const S& s) { return s.waiting; });
  family("frugal_engine_speculative_drafted_tokens_total", "counter",
         "Tokens the draft model proposed.", [](const S& s) { return s.drafted; });
  family("frugal_engine_speculative_accepted_tokens_total", "counter",
         "Drafted tokens the target model accepted.", [](const S& s) { return s.accepted; });
}

// The exact cache's own counters (the same as GET /admin/cache), read at scrape time.
void cache_gauges(std::string& out, const cache::CacheStats& s) {
  PromText w(out);
  const auto one = [&](const char* name, const char* type, const char* help, uint64_t v) {
    w.family(name, type, help);
    w.sample(name, "", static_cast<double>(v));
  };
  one("frugal_cache_memory_entries", "gauge", "Answers held in the exact cache's memory tier.", s.memory_entries);
  one("frugal_cache_memory_bytes", "gauge", "Bytes of the answers held in the exact cache's memory tier.",
      s.memory_bytes);
  one("frugal_cache_stores_total", "counter", "Answers stored in the exact cache.", s.stores);
  one("frugal_cache_memory_evictions_total", "counter",
      "Entries evicted from the memory tier to stay within cache.memory (they stay on disk).", s.memory_evictions);
  one("frugal_cache_expired_total", "counter", "Expired entries found and removed.", s.expired);
  one("frugal_cache_disk_reads_total", "counter",
      "Cache lookups that needed a disk read (the cache's read pool); the rest were answered from memory.",
      s.disk_reads);
  one("frugal_cache_dropped_writes_total", "counter",
      "Answers whose disk write was skipped under back-pressure (kept in memory only).", s.dropped_writes);
}

}  // namespace

std::string render_metrics(Server& server, Telemetry& telemetry) {
  std::string out = telemetry.metrics().render();
  const auto snap = server.snapshot();
  budget_gauges(out, *snap);
  engine_gauges(out, server.engines());
  cache_gauges(out, server.cache().stats());
  PromText w(out);
  w.family("frugal_metric_label_values_folded_total", "counter",
           "Metric points whose client-chosen label value was counted as \"other\" "
           "(telemetry.metrics.max_label_values).");
  w.sample("frugal_metric_label_values_folded_total", "",
           static_cast<double>(telemetry.metrics().folded()));
  w.family("frugal_access_log_dropped_lines_total", "counter",
           "Access-log lines dropped because the writer could not keep up.");
  w.sample("frugal_access_log_dropped_lines_total", "",
           static_cast<double>(telemetry.access_log_dropped()));
  w.family("frugal_requests_in_flight", "gauge", "Requests being served now.");
  w.sample("frugal_requests_in_flight", "",
           static_cast<double>(server.in_flight().load(std::memory_order_relaxed)));
  if (const SharedState* shared = server.shared_state()) {
    w.family("frugal_shared_state_failures_total", "counter",
             "Redis calls (shared_state) that failed; each request fell back to local limits (on_failure: open) "
             "or was refused with 503 (closed).");
    w.sample("frugal_shared_state_failures_total", "", static_cast<double>(shared->failures()));
    w.family("frugal_shared_state_dropped_writes_total", "counter",
             "Queued Redis writes (budget settlements, key records, cache fills) given up.");
    w.sample("frugal_shared_state_dropped_writes_total", "", static_cast<double>(shared->dropped_writes()));
    w.family("frugal_shared_state_up", "gauge", "1 while Redis (shared_state) answers.");
    w.sample("frugal_shared_state_up", "", shared->down() ? 0.0 : 1.0);
  }
  return out;
}

}  // namespace frugal::gateway

namespace frugal::gateway {

asio::awaitable<bool> handle_metrics(ClientSocket& stream, Request&, RequestContext& ctx,
                                     Worker& w) {
  Telemetry* t = w.server.telemetry();
  if (!t || !t->metrics_enabled())
    co_return co_await send_openai_error(
        stream,
        make_error(ErrorKind::kNotFound, "Metrics are off (telemetry.metrics.enabled: false).", "",
                   "unknown_url"),
        ctx);
  co_return co_await send_response(stream, 200, "text/plain; version=0.0.4; charset=utf-8",
                                   render_metrics(w.server, *t), ctx);
}

}  // namespace frugal::gateway
