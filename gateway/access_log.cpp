#include "gateway/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <ctime>

#include "core/json.h"
#include "core/log.h"

namespace frugal::gateway {

namespace {

using router::TierAttempt;
using router::TierStatus;

// "2026-12-06T10:46:43.123456Z". The date and time to the second are formatted once per
// second per thread (gmtime_r takes glibc's time-zone lock, snprintf is slow).
std::string iso_utc(int64_t wall_us) {
  struct Second {
    int64_t secs = INT64_MIN;
    char text[96] = {};  // "YYYY-MM-DDTHH:MM:SS"
    int len = 0;
  };
  thread_local Second cached;
  int64_t secs = wall_us / 1'000'000;
  int64_t micros = wall_us % 1'000'000;
  if (micros < 0) micros += 1'000'000, --secs;
  if (secs != cached.secs) {
    const time_t t = static_cast<time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    cached.len = std::snprintf(cached.text, sizeof cached.text, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached.secs = secs;
  }
  std::string out;
  out.reserve(static_cast<size_t>(cached.len) + 8);
  out.append(cached.text, static_cast<size_t>(cached.len));
  char frac[8] = {'.', '0', '0', '0', '0', '0', '0', 'Z'};
  for (int i = 6; i >= 1; --i, micros /= 10) frac[i] = static_cast<char>('0' + micros % 10);
  out.append(frac, sizeof frac);
  return out;
}

const char* cache_name(router::CacheOutcome c) {
  switch (c) {
    case router::CacheOutcome::kNone:
      return nullptr;
    case router::CacheOutcome::kHit:
      return "hit";
    case router::CacheOutcome::kMiss:
      return "miss";
    case router::CacheOutcome::kBypass:
      return "bypass";
  }
  return nullptr;
}

// A request refused before it reached an answer source (budget, unknown model).
bool refused(const router::RequestTrace& t) {
  return !router::has_ledger_row(t) && t.status >= 400;
}

void opt_string(JsonWriter& j, const char* k, const std::string& v) {
  j.key(k);
  if (v.empty())
    j.null();
  else
    j.value(v);
}

std::string price_label(const router::RequestTrace& t) {
  if (t.price_unknown()) return "unknown";
  bool policy = t.baseline_known && t.baseline_price == policies::PriceSource::kPolicy;
  for (const TierAttempt& a : t.tiers) policy = policy || a.price == policies::PriceSource::kPolicy;
  const bool catalogue = t.catalogue_priced();
  if (policy && catalogue) return "policy+catalogue";
  return policy ? "policy" : catalogue ? "catalogue" : "none";
}

}  // namespace

std::string access_log_line(const router::RequestTrace& t) {
  std::string out;
  out.reserve(640);
  JsonWriter j(out);
  j.begin_object();
  j.key("time").value(iso_utc(t.wall_start_us));
  j.key("request_id").value(t.request_id);
  j.key("trace_id").value(t.trace_id);
  j.key("dialect").value(dialect_name(t.dialect));
  opt_string(j, "key_id", t.key_id);
  opt_string(j, "team", t.team);
  j.key("requested_model").value(t.requested_model);
  j.key("stream").value(t.client_stream);
  j.key("request_type").value(t.request_type);
  j.key("route").value(t.route);
  j.key("status").value(t.status);
  j.key("end").value(refused(t) ? "refused" : router::exchange_end_name(t.end));
  j.key("cache");
  if (const char* c = cache_name(t.cache.outcome))
    j.value(c);
  else
    j.null();
  const TierAttempt* answer = t.answer_attempt();
  j.key("tier");
  if (t.answer_tier >= 0)
    j.value(t.answer_tier + 1);
  else
    j.null();
  opt_string(j, "provider", t.answered_from_cache() ? std::string() : t.answer_provider);
  opt_string(j, "model", t.answered_from_cache() ? t.cache.model : t.answer_model);
  opt_string(j, "upstream_model",
             t.answered_from_cache() ? std::string() : t.answer_upstream_model);
  int tiers = 0;
  Usage billed;  // every tier and verifier call: the tokens the cost is for
  for (const TierAttempt& a : t.tiers) {
    if (a.status != TierStatus::kVerifier) ++tiers;
    billed.input_tokens += a.usage.input_tokens;
    billed.cached_input_tokens += a.usage.cached_input_tokens;
    billed.cache_write_5m_tokens += a.usage.cache_write_5m_tokens;
    billed.cache_write_1h_tokens += a.usage.cache_write_1h_tokens;
    billed.output_tokens += a.usage.output_tokens;
    billed.reasoning_tokens += a.usage.reasoning_tokens;
  }
  j.key("tiers_tried").value(tiers);
  j.key("upstream_attempts").value(static_cast<int64_t>(t.transport_attempts()));
  j.key("tokens").begin_object();
  j.key("input").value(billed.input_tokens);
  j.key("cache_read").value(billed.cached_input_tokens);
  j.key("cache_write").value(billed.cache_write_5m_tokens + billed.cache_write_1h_tokens);
  j.key("output").value(billed.output_tokens);
  j.key("reasoning").value(billed.reasoning_tokens);
  j.end_object();
  // Exact decimals, as the ledger and the x-frugal-*-usd headers print them.
  const Money cost = t.cost();
  const Money baseline = t.booked_baseline();
  j.key("cost_usd").raw(cost.to_usd_string());
  j.key("baseline_usd").raw(baseline.to_usd_string());
  j.key("savings_usd").raw((baseline - cost).to_usd_string());
  // "unknown": a model that used tokens has no price (cost_usd counts it as 0, a lower
  // bound); "catalogue" / "policy" / "policy+catalogue": who priced it; "none": nothing to price.
  j.key("price").value(price_label(t));
  if (t.shaping.applied) {
    j.key("shaping").value(router::shaping_names(t.shaping.applied));
    j.key("max_tokens").value(t.shaping.max_tokens);
  }
  j.key("overhead_us").value(t.overhead_us);
  j.key("duration_us")
      .value(t.mono_end_us > t.mono_start_us ? t.mono_end_us - t.mono_start_us : int64_t{0});
  // Until the answer's first byte left the upstream (a cache hit: none).
  j.key("ttft_us");
  if (answer && answer->first_byte_us > t.mono_start_us)
    j.value(answer->first_byte_us - t.mono_start_us);
  else
    j.null();
  j.end_object();
  return out;
}

std::vector<std::string> upstream_warnings(const router::RequestTrace& t) {
  std::vector<std::string> out;
  for (const TierAttempt& a : t.tiers) {
    for (size_t i = 0; i < a.transport.size(); ++i) {
      const router::AttemptRecord& r = a.transport[i];
      if (r.error.empty() && r.status > 0 && r.status < 400) continue;
      std::string w =
          "request " + t.request_id + ": upstream '" + r.provider + "' model '" + r.model + "' ";
      w += r.status > 0 && r.error.empty() ? "returned status " + std::to_string(r.status)
           : r.status > 0 ? "failed (status " + std::to_string(r.status) + "): " + r.error
                          : "failed: " + (r.error.empty() ? std::string("no response") : r.error);
      w += " after " + std::to_string(r.latency_us / 1000) + " ms";
      if (i + 1 < a.transport.size()) {
        const router::AttemptRecord& next = a.transport[i + 1];
        w += next.provider == r.provider && next.model == r.model
                 ? "; retrying"
                 : "; falling back to '" + next.provider + "' model '" + next.model + "'";
      } else {
        w += a.status == TierStatus::kVerifier ? "; the verifier call failed"
                                               : "; no attempt left for this tier";
      }
      out.push_back(std::move(w));
    }
  }
  return out;
}

namespace {

// The descriptor for `where` ("stdout" or a file path) and whether it is ours to close.
Result<std::pair<int, bool>> open_target(const std::string& where) {
  if (where == "stdout") return std::pair{STDOUT_FILENO, false};
  const int fd = ::open(where.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return make_error(ErrorKind::kInvalidRequest,
                      "telemetry.access_log: cannot open '" + where + "': " + std::strerror(errno));
  return std::pair{fd, true};
}

}  // namespace

Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::string& where) {
  auto target = open_target(where);
  if (!target) return std::move(target).error();
  return std::unique_ptr<AccessLog>(new AccessLog(target->first, target->second));
}

Result<void> AccessLog::reopen(const std::string& where) {
  std::pair<int, bool> next{-1, false};
  if (!where.empty()) {
    auto target = open_target(where);
    if (!target) return std::move(target).error();
    next = *target;
  }
  std::lock_guard lock(mu_);
  flush_locked();
  if (own_fd_ && fd_ >= 0) ::close(fd_);
  fd_ = next.first;
  own_fd_ = next.second;
  write_failed_.store(false, std::memory_order_relaxed);
  return {};
}

AccessLog::AccessLog(int fd, bool own_fd) : fd_(fd), own_fd_(own_fd) {
  writer_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  writer_.join();
  flush();
  if (own_fd_ && fd_ >= 0) ::close(fd_);
}

void AccessLog::add(std::string_view line) {
  auto& shard = buffers_.local();
  bool wake = false;
  {
    std::lock_guard lock(shard.mu);
    std::string& buf = shard.data;
    if (buf.size() + line.size() + 1 > kMaxBufferBytes) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const bool was_below = buf.size() < kWakeBytes;
    buf.append(line);
    buf += '\n';
    wake = was_below && buf.size() >= kWakeBytes;
  }
  if (wake) cv_.notify_one();
}

void AccessLog::flush() {
  std::lock_guard lock(mu_);  // one writer at a time: lines of one thread stay in order
  flush_locked();
}

void AccessLog::flush_locked() {
  std::string batch;
  buffers_.for_each([&batch](std::string& buf) {
    batch.append(buf);
    buf.clear();
  });
  if (!batch.empty()) write_all(batch);
}

void AccessLog::write_all(const std::string& bytes) {
  if (fd_ < 0) return;  // turned off by a reload: lines added meanwhile are discarded
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!write_failed_.exchange(true))
        log::error(std::string("access log: write failed (") + std::strerror(errno) +
                   "); lines are lost");
      return;
    }
    off += static_cast<size_t>(n);
  }
}

void AccessLog::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(kFlushIntervalMs));
    lock.unlock();
    flush();
    lock.lock();
  }
}

}  // namespace frugal::gateway
