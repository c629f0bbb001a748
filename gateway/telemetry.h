#pragma once
// What leaves the process about each finished chat request besides its response and
// ledger row: Prometheus metric points, the access-log line, warnings for failed
// upstream attempts. All derived from the request's trace; nothing counted twice.
//
// Threading: record() on the request's I/O thread (per-thread shards, no shared lock in
// the steady state); render_metrics() on any thread.
#include <memory>
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

  // A finished request (or one refused before it reached an answer source). `cfg`: the
  // request's configuration snapshot (its secrets are masked in log text).
  void record(const router::RequestTrace& t, const config::GatewayConfig& cfg);

  MetricsRegistry& metrics() { return metrics_; }
  AccessLog* access_log() { return access_log_.get(); }  // null when off
  bool metrics_enabled() const { return metrics_enabled_; }

 private:
  explicit Telemetry(const config::TelemetryConfig& cfg);
  bool metrics_enabled_;
  MetricsRegistry metrics_;
  std::unique_ptr<AccessLog> access_log_;
};

// The whole /metrics exposition: the requests' families, then gauges read now (budgets,
// engines, the telemetry's own counters).
std::string render_metrics(Server& server, Telemetry& telemetry);

// GET /metrics (authorised like /admin/* by the session): the exposition, or 404 when
// telemetry.metrics.enabled is false.
asio::awaitable<bool> handle_metrics(ClientSocket& stream, Request& req, RequestContext& ctx,
                                     Worker& w);

}  // namespace frugal::gateway
