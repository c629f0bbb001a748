#pragma once
// What leaves the process about each finished chat request besides its response and
// ledger row: Prometheus metric points, the access-log line, warnings for failed
// upstream attempts. All derived from the request's trace; nothing counted twice.
//
// Threading: record() on the request's I/O thread (per-thread shards, no shared lock in
// the steady state); render_metrics() on any thread; reconfigure() on a reload's thread.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.h"
#include "core/error.h"
#include "gateway/access_log.h"
#include "gateway/metrics.h"
#include "gateway/worker.h"
#include "router/request_trace.h"

namespace frugal::gateway {

class Server;

class Telemetry {
 public:
  // Opens the access log `cfg` names; the error says which file could not be opened.
  static Result<std::unique_ptr<Telemetry>> open(const config::TelemetryConfig& cfg);

  // A reload's `telemetry:`, for the requests that finish from now on: metrics on or off
  // (the series recorded so far are kept), the access log on, off or elsewhere (its file
  // opened again even when unchanged, for logrotate). On error (the new file cannot be
  // opened) nothing changes. max_label_values is kept as started (see
  // restart_required_keys in gateway/server.h).
  Result<void> reconfigure(const config::TelemetryConfig& cfg);

  // A finished request (or one refused before it reached an answer source). `cfg`: the
  // request's configuration snapshot (its secrets are masked in log text).
  void record(const router::RequestTrace& t, const config::GatewayConfig& cfg);

  MetricsRegistry& metrics() { return metrics_; }
  // The access log while it is on, null while off.
  AccessLog* access_log() { return log_on_.load(std::memory_order_acquire); }
  // Lines dropped since start (the access log's writer could not keep up).
  int64_t access_log_dropped() const;
  bool metrics_enabled() const { return metrics_enabled_.load(std::memory_order_relaxed); }

 private:
  explicit Telemetry(const config::TelemetryConfig& cfg);
  std::atomic<bool> metrics_enabled_;
  MetricsRegistry metrics_;
  std::mutex reconfigure_mu_;
  // Made when the access log is first turned on, kept to the end (a request may hold the
  // pointer while a reload turns the log off); log_on_ is it while on.
  std::unique_ptr<AccessLog> log_;
  std::atomic<AccessLog*> log_made_{nullptr};
  std::atomic<AccessLog*> log_on_{nullptr};
};

// The whole /metrics exposition: the requests' families, then gauges read now (budgets,
// engines, the telemetry's own counters).
std::string render_metrics(Server& server, Telemetry& telemetry);

// GET /metrics (authorised like /admin/* by the session): the exposition, or 404 when
// telemetry.metrics.enabled is false.
asio::awaitable<bool> handle_metrics(ClientSocket& stream, Request& req, RequestContext& ctx,
                                     Worker& w);

}  // namespace frugal::gateway
