#include "gateway/otlp/exporter.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "core/http_date.h"
#include "core/ids.h"
#include "core/log.h"
#include "gateway/otlp/encode.h"
#include "gateway/otlp/spans.h"

namespace frugal::otlp {

namespace {

constexpr int64_t kFirstBackoffMs = 500;
constexpr int64_t kMaxBackoffMs = 5'000;
constexpr int64_t kWarnEveryUs = 10'000'000;
constexpr int64_t kIdleWaitUs = 3'600'000'000;  // disabled, nothing queued: wait for a reload

int64_t now_unix_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct CurlResponse {
  std::string body;
  int64_t retry_after_ms = -1;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<CurlResponse*>(user);
  const size_t len = size * n;
  if (r->body.size() < 200) r->body.append(data, std::min(len, 200 - r->body.size()));
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<CurlResponse*>(user);
  const std::string_view line(data, size * n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    bool match = true;
    for (size_t i = 0; i < kName.size() && match; ++i)
      match = static_cast<char>(std::tolower(static_cast<unsigned char>(line[i]))) == kName[i];
    if (match) {
      std::string_view v = line.substr(kName.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
      r->retry_after_ms = parse_retry_after_ms(v, static_cast<int64_t>(std::time(nullptr)));
    }
  }
  return size * n;
}

struct CurlSender {
  std::shared_ptr<CURL> easy;  // one handle: the connection to the collector is kept alive
  std::shared_ptr<curl_slist> headers;

  SendResult operator()(const std::string& url, std::string_view body, int64_t timeout_ms) const {
    CURL* h = easy.get();
    CurlResponse resp;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<int64_t>(timeout_ms, 5'000)));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp);
    SendResult r;
    const CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      r.error = curl_easy_strerror(rc);
      return r;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    r.status = static_cast<int>(status);
    r.retry_after_ms = resp.retry_after_ms;
    if (r.status >= 300) r.error = resp.body;
    return r;
  }
};

}  // namespace

Sender curl_sender(std::vector<std::string> headers) {
  curl_global_init(CURL_GLOBAL_DEFAULT);  // reference-counted; the exporter starts on the main thread
  CurlSender s;
  s.easy = std::shared_ptr<CURL>(curl_easy_init(), curl_easy_cleanup);
  curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/x-protobuf");
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  s.headers = std::shared_ptr<curl_slist>(list, curl_slist_free_all);
  return s;
}

bool retryable(const SendResult& r) {
  return r.status == 0 || r.status == 429 || r.status == 502 || r.status == 503 || r.status == 504;
}

int64_t retry_delay_ms(int retry, int64_t retry_after_ms) {
  if (retry_after_ms >= 0) return retry_after_ms;
  int64_t d = kFirstBackoffMs;
  for (int i = 1; i < retry && d < kMaxBackoffMs; ++i) d *= 2;
  return std::min(d, kMaxBackoffMs);
}

Exporter::Exporter(const config::OtlpConfig& cfg, Sender sender)
    : sender_(std::move(sender)), own_sender_(!sender_), metrics_(now_unix_ns()) {
  use_config(cfg);
  publish_limits(cfg);
  thread_ = std::thread([this] { run(); });
}

void Exporter::use_config(const config::OtlpConfig& cfg) {
  const bool new_headers = !sender_ || cfg.headers != cfg_.headers;
  cfg_ = cfg;
  resource_ = resource_attributes(cfg.service_name.empty() ? "frugal" : cfg.service_name);
  traces_url_ = cfg.endpoint + "/v1/traces";
  metrics_url_ = cfg.endpoint + "/v1/metrics";
  if (own_sender_ && new_headers) {
    std::vector<std::string> headers;
    for (const auto& [k, v] : cfg.headers) headers.push_back(k + ": " + v);
    sender_ = curl_sender(std::move(headers));
  }
}

void Exporter::publish_limits(const config::OtlpConfig& cfg) {
  queue_limit_.store(static_cast<size_t>(cfg.queue_size), std::memory_order_relaxed);
  batch_limit_.store(static_cast<size_t>(cfg.batch_size), std::memory_order_relaxed);
  traces_.store(cfg.traces, std::memory_order_relaxed);
  metrics_on_.store(cfg.metrics, std::memory_order_relaxed);
  enabled_.store(cfg.enabled, std::memory_order_release);
}

void Exporter::reconfigure(const config::OtlpConfig& cfg) {
  publish_limits(cfg);
  {
    std::lock_guard lock(mu_);
    pending_ = cfg;
  }
  cv_.notify_all();
}

Exporter::~Exporter() { shutdown(0); }

void Exporter::record(const router::RequestTrace& t) {
  if (!enabled_.load(std::memory_order_acquire)) return;
  const bool metrics = metrics_on_.load(std::memory_order_relaxed);
  const size_t n = traces_.load(std::memory_order_relaxed) && t.sampled ? span_count(t) : 0;
  if (!metrics && n == 0) return;
  const size_t limit = queue_limit_.load(std::memory_order_relaxed);
  // The copy is made outside the lock, and not at all when the queue is known full. The
  // exporter thread turns it into spans and metric observations: the I/O thread only
  // copies.
  if (queued_traces_.load(std::memory_order_relaxed) < limit) {
    Queued q{t, n, metrics};
    std::lock_guard lock(mu_);
    if (!stopping_ && queue_.size() < limit) {
      queue_.push_back(std::move(q));
      queued_traces_.store(queue_.size(), std::memory_order_relaxed);
      queued_spans_ += n;
      // The first trace arms the flush timer, a full batch goes at once.
      if (queue_.size() == 1 || queued_spans_ >= batch_limit_.load(std::memory_order_relaxed)) cv_.notify_one();
      return;
    }
  }
  // Queue full (or shut down): the metrics still count the request, its spans are lost.
  if (metrics) metrics_.add(t);
  dropped_.fetch_add(n, std::memory_order_relaxed);
}

void Exporter::shutdown(int64_t deadline_ms) {
  if (stopped_.exchange(true)) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    stop_deadline_us_ = mono_us() + deadline_ms * 1000;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Exporter::interruptible_wait(int64_t ms) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_; });
}

bool Exporter::send(const std::string& url, std::string_view body, bool allow_retry, const char* what) {
  const int64_t give_up_us = mono_us() + cfg_.max_retry_ms * 1000;
  for (int retry = 1;; ++retry) {
    int64_t timeout_ms = cfg_.timeout_ms;
    if (!allow_retry) {
      std::lock_guard lock(mu_);
      timeout_ms = std::clamp<int64_t>((stop_deadline_us_ - mono_us()) / 1000, 1, cfg_.timeout_ms);
    }
    const SendResult r = sender_(url, body, timeout_ms);
    if (r.status >= 200 && r.status < 300) return true;
    const bool again = allow_retry && retryable(r);
    const int64_t delay = retry_delay_ms(retry, r.retry_after_ms);
    if (!again || mono_us() + delay * 1000 > give_up_us) {
      const int64_t now = mono_us();
      if (now - last_warn_us_ >= kWarnEveryUs) {
        last_warn_us_ = now;
        log::warn(std::string("otlp: exporting ") + what + " to " + url + " failed (" +
                  (r.status ? "status " + std::to_string(r.status) : "no response") +
                  (r.error.empty() ? "" : ": " + r.error) + "); " + std::to_string(spans_dropped()) +
                  " spans dropped so far");
      }
      return false;
    }
    log::debug(std::string("otlp: ") + what + " export answered " + std::to_string(r.status) + ", retrying in " +
               std::to_string(delay) + " ms");
    if (interruptible_wait(delay)) return false;  // shutdown: no more retries
  }
}

void Exporter::take_metrics(const std::deque<Queued>& batch) {
  for (const Queued& q : batch)
    if (q.metrics) metrics_.add(q.trace);
}

void Exporter::export_spans(std::deque<Queued>& batch, bool allow_retry) {
  take_metrics(batch);
  // Each trace's spans are encoded while it is still queued (they borrow its strings),
  // into a body buffer kept across batches.
  size_t n = 0;
  TraceEncoder enc(body_, resource_);
  for (const Queued& q : batch) {
    if (q.spans == 0) continue;
    spans(q.trace, span_buf_);
    for (const Span& s : span_buf_) {
      enc.add(s);
      ++n;
    }
  }
  const std::string_view body = enc.finish();
  batch.clear();
  if (n == 0) return;
  if (send(traces_url_, body, allow_retry, "spans")) exported_.fetch_add(n, std::memory_order_relaxed);
  else dropped_.fetch_add(n, std::memory_order_relaxed);
}

void Exporter::export_metrics(bool allow_retry) {
  if (!cfg_.enabled || !cfg_.metrics) return;
  const auto data = metrics_.collect(now_unix_ns(), ExporterCounters{spans_exported(), spans_dropped()});
  if (send(metrics_url_, encode_metrics(resource_, data), allow_retry, "metrics"))
    metric_exports_.fetch_add(1, std::memory_order_relaxed);
}

void Exporter::run() {
  int64_t next_metrics_us = mono_us() + cfg_.export_interval_ms * 1000;
  int64_t oldest_us = 0;  // when the oldest queued trace was first seen waiting
  std::deque<Queued> batch;
  std::optional<config::OtlpConfig> next_cfg;
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      // Disabled by a reload: no metric exports until enabled again.
      const auto metrics_due = [&] { return cfg_.enabled && mono_us() >= next_metrics_us; };
      const auto ready = [&] {
        return stopping_ || pending_ || queued_spans_ >= static_cast<size_t>(cfg_.batch_size) ||
               (!queue_.empty() && oldest_us != 0 && mono_us() >= oldest_us + cfg_.flush_interval_ms * 1000) ||
               metrics_due();
      };
      while (!ready()) {
        if (!queue_.empty() && oldest_us == 0) oldest_us = mono_us();
        int64_t wake_us = cfg_.enabled ? next_metrics_us : mono_us() + kIdleWaitUs;
        if (oldest_us != 0) wake_us = std::min(wake_us, oldest_us + cfg_.flush_interval_ms * 1000);
        cv_.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(wake_us - mono_us(), 1'000)));
      }
      next_cfg.swap(pending_);
      stopping = stopping_;
      // Whole traces, up to batch_size spans (at least one trace).
      size_t n = 0;
      while (!queue_.empty() && (batch.empty() || n + queue_.front().spans <= static_cast<size_t>(cfg_.batch_size))) {
        n += queue_.front().spans;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_spans_ -= std::min(queued_spans_, n);
      queued_traces_.store(queue_.size(), std::memory_order_relaxed);
      oldest_us = queue_.empty() ? 0 : mono_us();
    }
    if (next_cfg) {  // applied outside the lock: a new sender opens a curl handle
      const bool interval_changed =
          next_cfg->export_interval_ms != cfg_.export_interval_ms || next_cfg->enabled != cfg_.enabled;
      use_config(*next_cfg);
      next_cfg.reset();
      if (interval_changed) next_metrics_us = mono_us() + cfg_.export_interval_ms * 1000;
    }
    if (stopping) break;
    if (!batch.empty()) export_spans(batch, true);
    if (cfg_.enabled && mono_us() >= next_metrics_us) {
      export_metrics(true);
      next_metrics_us = mono_us() + cfg_.export_interval_ms * 1000;
    }
  }
  // Shutdown: what is queued, one try per batch, while the deadline allows.
  for (;;) {
    if (!batch.empty()) {
      if (mono_us() < stop_deadline_us_) export_spans(batch, false);
      else {
        take_metrics(batch);
        for (const Queued& q : batch) dropped_.fetch_add(q.spans, std::memory_order_relaxed);
        batch.clear();
      }
    }
    std::lock_guard lock(mu_);
    if (queue_.empty()) break;
    size_t n = 0;
    while (!queue_.empty() && (batch.empty() || n + queue_.front().spans <= static_cast<size_t>(cfg_.batch_size))) {
      n += queue_.front().spans;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  if (mono_us() < stop_deadline_us_) export_metrics(false);
}

}  // namespace frugal::otlp
