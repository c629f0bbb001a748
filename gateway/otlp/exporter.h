#pragma once
// The OTLP exporter: spans and metrics of finished requests, sent over OTLP/HTTP
// protobuf by one thread of its own, so a request never waits on a collector.
//
//   record(trace)     on the request's I/O thread, at ChatExchange::finish: a copy of the
//                     trace joins a bounded queue — or, the queue full, its metric
//                     observations are aggregated right there (a short mutex) and its spans
//                     are dropped and counted. Never blocks on I/O.
//   exporter thread   aggregates the queued traces' metric observations (metrics.h), turns
//                     them into spans (spans.h), batches them (batch_size
//                     spans, or whatever flush_interval gathered) and POSTs them to
//                     {endpoint}/v1/traces; every export_interval it POSTs the cumulative
//                     metrics to {endpoint}/v1/metrics. 429/502/503/504 and transport
//                     failures are retried with exponential backoff (0.5 s doubling, at
//                     most 5 s) or after the response's Retry-After, until max_retry_time;
//                     a batch that cannot be delivered is dropped and counted.
//   shutdown()        sends what is queued (no retries) within its deadline, then a last
//                     metrics export.
//   reconfigure(cfg)  a reload's new `telemetry.otlp`: record() follows it at once; the
//                     exporter thread switches endpoint, headers, service name, batching and
//                     intervals before its next export (spans still queued go to the new
//                     endpoint). `enabled: false` stops recording and metric exports; what is
//                     queued is still sent. The metrics stay cumulative across it.
//
// Counters (thread-safe): spans_dropped() — spans that never reached the collector
// (queue full, collector down or refusing, shutdown); spans_exported() — spans the
// collector accepted. Both are also exported as OTLP sums (frugal.otlp.spans.*).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "config/config.h"
#include "gateway/otlp/metrics.h"
#include "gateway/otlp/span.h"
#include "router/request_trace.h"

namespace frugal::otlp {

// What one POST came back with.
struct SendResult {
  int status = 0;             // HTTP status, 0: no response (transport error)
  std::string error;          // transport error or a short excerpt of an error body
  int64_t retry_after_ms = -1;  // the response's Retry-After, -1: none
};
// POSTs `body` (application/x-protobuf) to `url`; blocking, at most `timeout_ms`.
using Sender = std::function<SendResult(const std::string& url, std::string_view body, int64_t timeout_ms)>;
// The libcurl sender, with `headers` ("Name: value") on every request.
Sender curl_sender(std::vector<std::string> headers);

// Whether an export answered `r` may succeed if retried (OTLP/HTTP: 429, 502, 503, 504,
// or no response at all).
bool retryable(const SendResult& r);
// The wait before retry number `retry` (1-based): Retry-After when given, else 0.5 s
// doubling, at most 5 s.
int64_t retry_delay_ms(int retry, int64_t retry_after_ms);

class Exporter {
 public:
  // Starts the exporter thread. `sender` defaults to curl_sender(cfg.headers).
  explicit Exporter(const config::OtlpConfig& cfg, Sender sender = nullptr);
  ~Exporter();  // shutdown(0) if not done
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  void record(const router::RequestTrace& t);  // any thread; never waits on the collector
  // Any thread (a reload); never waits on the collector.
  void reconfigure(const config::OtlpConfig& cfg);
  // Flushes what is queued (one try per batch) until `deadline_ms` from now, exports the
  // metrics a last time, and joins the thread. Later record() calls count drops.
  void shutdown(int64_t deadline_ms);

  uint64_t spans_dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t spans_exported() const { return exported_.load(std::memory_order_relaxed); }
  uint64_t metric_exports() const { return metric_exports_.load(std::memory_order_relaxed); }

 private:
  // A finished request waiting for the exporter thread.
  struct Queued {
    router::RequestTrace trace;
    size_t spans = 0;      // its spans to export (0: unsampled, or traces off)
    bool metrics = false;  // its metric observations to aggregate
  };

  void run();
  // Sends one body with retries while `allow_retry`; true when the collector took it.
  bool send(const std::string& url, std::string_view body, bool allow_retry, const char* what);
  void take_metrics(const std::deque<Queued>& batch);
  void export_spans(std::deque<Queued>& batch, bool allow_retry);
  void export_metrics(bool allow_retry);
  // Waits up to `ms` unless shutdown starts; true when it did.
  bool interruptible_wait(int64_t ms);
  // The exporter thread's view of the config: cfg_, the URLs, the resource and the sender.
  void use_config(const config::OtlpConfig& cfg);
  // What record() reads of the config, published for any thread.
  void publish_limits(const config::OtlpConfig& cfg);

  // Exporter thread only (and the constructor): the config it exports with.
  config::OtlpConfig cfg_;
  Attributes resource_;
  std::string traces_url_, metrics_url_;
  std::string body_;  // room for the spans' request bodies, reused (TraceEncoder)
  std::vector<Span> span_buf_;  // one trace's spans, reused
  Sender sender_;
  const bool own_sender_;  // sender_ is curl_sender(cfg_.headers), rebuilt when they change
  MetricsAggregator metrics_;

  std::atomic<bool> enabled_{true}, traces_{true}, metrics_on_{true};
  std::atomic<size_t> queue_limit_{0}, batch_limit_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Queued> queue_;
  size_t queued_spans_ = 0;
  std::atomic<size_t> queued_traces_{0};  // queue_.size(), read without the lock
  bool stopping_ = false;
  int64_t stop_deadline_us_ = 0;  // mono µs
  std::optional<config::OtlpConfig> pending_;  // a reload's config, not yet taken by the thread

  std::atomic<uint64_t> dropped_{0}, exported_{0}, metric_exports_{0};
  std::atomic<bool> stopped_{false};
  int64_t last_warn_us_ = 0;  // exporter thread only
  uint64_t dropped_at_warn_ = 0;
  std::thread thread_;
};

}  // namespace frugal::otlp
