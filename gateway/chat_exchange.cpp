#include "gateway/chat_exchange.h"

#include <charconv>
#include <limits>

#include <simdjson.h>

#include <algorithm>

#include "backends/dialect/errors.h"
#include "backends/whole_body.h"
#include "config/secrets.h"
#include "core/sse.h"
#include "cache/hash.h"
#include "cache/prefix.h"
#include "core/ids.h"
#include "core/log.h"
#include "gateway/auth.h"
#include "gateway/find_header.h"
#include "gateway/otlp/exporter.h"
#include "gateway/routing.h"
#include "gateway/server.h"
#include "gateway/telemetry.h"
#include "router/ledger.h"

namespace frugal::gateway {

ChatExchange::ChatExchange(Worker& worker, RequestContext& ctx, const Request& http, Dialect dialect)
    : routing_(std::make_unique<RouteState>(worker.server.snapshot())), w_(worker), ctx_(ctx), http_(http) {
  cfg_ = routing_->snap->cfg;  // config and policy from one snapshot
  trace_.request_id = ctx.request_id;
  const auto tp = find_header(http, "traceparent");
  const std::string_view traceparent = tp == http.end() ? std::string_view{} : std::string_view(tp->value());
  if (auto parent = router::parse_traceparent(traceparent)) {  // parsed once: the caller's trace goes on
    trace_.trace_id = std::move(parent->trace_id);
    trace_.parent_span_id = std::move(parent->parent_id);
    trace_.sampled = parent->sampled;
  } else {
    trace_.trace_id = router::trace_id_for({}, ctx.request_id);
  }
  trace_.span_id = router::new_span_id();
  trace_.mono_start_us = ctx.start_us;
  trace_.wall_start_us = wall_us() - (mono_us() - ctx.start_us);
  trace_.dialect = dialect;
  // With auth on the key's name; else a hash of whatever key was sent (attribution only).
  trace_.key_id = ctx.key ? ctx.key->rec.name : tenant_id_of_key(presented_key(http));
  ctx.trace = &trace_;  // the response headers are read from the trace (gateway/trace_headers.h)
}

std::string tenant_id_of_key(std::string_view key) {
  return key.empty() ? std::string() : "k" + cache::hash128(key, 0x66727567616cull).to_hex().substr(0, 16);
}

Error model_name_too_long(size_t bytes) {
  return make_error(ErrorKind::kInvalidRequest,
                    "The model name is " + std::to_string(bytes) + " bytes long; at most " +
                        std::to_string(kMaxModelNameBytes) + " are accepted.",
                    "model", "model_name_too_long");
}

std::optional<int64_t> parse_cache_ttl_ms(std::string_view v) {
  int64_t n = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec == std::errc::result_out_of_range) return std::numeric_limits<int64_t>::max();
  if (ec != std::errc() || n < 0 || (!v.empty() && v.front() == '+')) return std::nullopt;
  const std::string_view unit(p, static_cast<size_t>(v.data() + v.size() - p));
  int64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "ms") scale = 1;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else if (unit == "d") scale = 86'400'000;
  else return std::nullopt;
  if (n > std::numeric_limits<int64_t>::max() / scale) return std::numeric_limits<int64_t>::max();
  return n * scale;
}

ChatExchange::~ChatExchange() {
  if (started_ && !trace_.finished) finish(seen_usage_, ExchangeEnd::kClientGone);
  ctx_.trace = nullptr;
}

boost::asio::awaitable<Result<std::shared_ptr<backends::Call>>> ChatExchange::start(
    ChatRequest& req, std::optional<std::vector<router::Target>> requested) {
  req.frugal_hop = frugal_hop_of(http_).value_or(0);  // bounded by the session (gateway/session.cpp)
  if (req.model.size() > kMaxModelNameBytes) co_return model_name_too_long(req.model.size());
  if (const auto t = http_.find("x-frugal-cache-ttl"); t != http_.end()) {
    client_ttl_ms_ = parse_cache_ttl_ms(t->value());
    if (!client_ttl_ms_)
      co_return make_error(ErrorKind::kInvalidRequest,
                           "x-frugal-cache-ttl must be a whole number of seconds, or one with a unit (500ms, 10m, "
                           "2h, 1d); 0 = do not store.",
                           "", "invalid_cache_ttl");
  }
  // Policy: request type, route, budget (gateway/routing.cpp).
  if (auto routed = route(req); !routed) co_return std::move(routed).error();

  // Every tier's targets, once; an alias with replicas picks one by prompt prefix.
  router::RouteTargetsInput rti;
  rti.cfg = cfg_.get();
  rti.plan = &plan();
  rti.passthrough = route_plan() == nullptr;
  rti.requested = std::move(requested);
  rti.pickers = &w_.server.replica_pickers();
  rti.prefix = [&] { return cache::prefix_hash(request_digest(req), req.model); };
  targets_ = router::resolve_route(std::move(rti));
  if (!targets_.tiers.front()) co_return targets_.tiers.front().error();

  started_ = true;
  const std::string cache_route_name = cache_route(req);
  trace_.cache.started_us = mono_us();
  auto hit = co_await cache_lookup(req, cache_route_name, cache_target(targets_.tiers.front()->front()));
  trace_.cache.ended_us = mono_us();
  if (hit) {
    on_cache_hit();
    co_return hit;
  }
  {
    const auto& cc = cfg_->cache;
    const auto rit = cc.routes.find(cache_route_name);
    req.auto_prompt_cache = rit != cc.routes.end() && rit->second.auto_prompt_cache
                                ? *rit->second.auto_prompt_cache
                                : cc.auto_prompt_cache;
  }

  // The cascade, or the one model (gateway/routing.cpp).
  about_to_wait();
  auto call = co_await dispatch_routed(req);
  if (!call) {
    // A request that failed after reaching the upstreams still gets its ledger row.
    finish(Usage{}, call.error().kind == ErrorKind::kCancelled ? ExchangeEnd::kClientGone
                                                              : ExchangeEnd::kUpstreamError);
    co_return call;
  }
  cache_started(**call);
  co_return call;
}

const cache::RequestDigest& ChatExchange::request_digest(const ChatRequest& req) {
  if (!digest_) digest_ = cache::digest_request(req);
  return *digest_;
}

void ChatExchange::observe_event(const SseEvent& ev) {
  cache_observe(&ev, {});
  policy_observe(&ev, {});
}

void ChatExchange::observe_body(std::string_view body) {
  cache_observe(nullptr, body);
  policy_observe(nullptr, body);
}

void ChatExchange::finish(const Usage& usage, ExchangeEnd end) {
  if (trace_.finished) return;
  // Whatever did not complete once shutdown cut the requests was cut by it (a cancelled
  // call, a destroyed coroutine), whatever it looks like to the codec.
  if (end != ExchangeEnd::kComplete && w_.server.cutting_for_shutdown()) end = ExchangeEnd::kShutdown;
  trace_.finished = true;
  trace_.end = end;
  seen_usage_ = usage;
  targets_.release();
  complete_live_tier(usage, end);
  trace_.mono_end_us = mono_us();  // after the live tier's last byte
  cache_finish(usage, end);
  book();
  capture_finish();
  record_ledger_row();
  if (otlp::Exporter* e = w_.server.otlp()) e->record(trace_);  // never waits
  log_finish(usage);
  record_telemetry();
}

void ChatExchange::refused(const Error& e) {
  if (trace_.finished) return;  // start() failed after dispatch: finish() ran
  trace_.finished = true;
  trace_.status = e.kind == ErrorKind::kCancelled ? 499 : e.http_status();
  record_telemetry();  // sets mono_end_us, which the span's end reads
  if (otlp::Exporter* x = w_.server.otlp()) x->record(trace_);
}

void ChatExchange::record_telemetry() {
  trace_.mono_end_us = mono_us();
  trace_.overhead_us = ctx_.overhead_us(trace_.mono_end_us);
  if (Telemetry* t = w_.server.telemetry()) t->record(trace_, *cfg_);
}

void ChatExchange::record_ledger_row() {
  if (!router::has_ledger_row(trace_)) return;  // never reached an answer source: no row
  router::LedgerRecord r = router::ledger_record(trace_);
  if (trace_.end == ExchangeEnd::kComplete && trace_.status < 400) {
    // The codec awaits commit() before the response's last bytes. Nearly idle (about
    // one request per I/O thread), the row is written right here: a WAL write is
    // cheaper than a thread wake-up. Under load it joins this loop turn's batch
    // (gateway/ledger_lane.h).
    commit_batch_ = w_.ledger_lane.add(std::move(r), w_.server.nearly_idle());
  } else if (!w_.server.ledger().append(std::move(r))) {
    log::error("request " + ctx_.request_id + ": ledger queue full or closed, row dropped");
  }
}

boost::asio::awaitable<void> ChatExchange::commit() {
  if (commit_batch_) co_await w_.ledger_lane.wait(commit_batch_);
}

// The usage hand-off, visible at --log-level debug.
void ChatExchange::log_finish(const Usage& u) const {
  if (!log::enabled(log::Level::kDebug)) return;
  log::debug("request " + ctx_.request_id + ": finish end=" + router::exchange_end_name(trace_.end) +
             " dialect=" + dialect_name(trace_.dialect) + " usage input=" + std::to_string(u.input_tokens) +
             " cached=" + std::to_string(u.cached_input_tokens) +
             " cache_write_5m=" + std::to_string(u.cache_write_5m_tokens) +
             " cache_write_1h=" + std::to_string(u.cache_write_1h_tokens) +
             " output=" + std::to_string(u.output_tokens) + " reported=" + (u.reported ? "1" : "0"));
}

const config::ProviderConfig* ChatExchange::answer_provider() const {
  const router::CascadeOutcome& o = routing_->outcome;
  return o.call ? o.target.provider : nullptr;
}

Error ChatExchange::upstream_error(backends::Call& call) const {
  const int status = call.status();
  const std::string_view body = call.body();
  // Anthropic's error types say more than its statuses (529 overloaded, ...).
  Error e = call.dialect() == Dialect::kAnthropic ? error_from_anthropic_body(status, body)
                                                                : error_from_openai_body(status, body);
  // The backend refused on the gateway's behalf (e.g. a request the provider's dialect
  // cannot express): the message is ours, not the upstream's.
  if (!call.header(backends::kGatewayErrorHeader).empty()) return e;
  // An upstream may echo the credential it was sent ("Incorrect API key provided: ...").
  mask_secrets(e.message);
  const std::string who = "upstream '" + (trace_.answer_provider.empty() ? std::string("?") : trace_.answer_provider) + "'";
  e.message = status == 401 || status == 403
                  ? who + " rejected the gateway's credentials (status " + std::to_string(status) + "): " + e.message
                  : who + " returned status " + std::to_string(status) + ": " + e.message;
  return e;
}

void ChatExchange::mask_secrets(std::string& text) const { config::mask_secrets(text, config::config_secrets(*cfg_)); }

Error ChatExchange::broken_answer(const Error& why) const {
  const std::string who = "upstream '" + (trace_.answer_provider.empty() ? std::string("?") : trace_.answer_provider) + "'";
  Error e = make_error(why.kind == ErrorKind::kTimeout ? ErrorKind::kTimeout : ErrorKind::kUpstream,
                       who + " failed mid-response: " + why.message);
  mask_secrets(e.message);
  return e;
}

size_t ChatExchange::max_answer_bytes() const {
  const config::ProviderConfig* p = answer_provider();
  return p ? static_cast<size_t>(p->max_answer_bytes) : backends::kDefaultMaxAnswerBytes;
}

size_t ChatExchange::max_sse_event_bytes() const {
  const config::ProviderConfig* p = answer_provider();
  return p ? static_cast<size_t>(p->max_sse_event_bytes) : SseParser::kDefaultMaxEventBytes;
}

}  // namespace frugal::gateway
