#pragma once
// One chat request between the client's codec and the backends: a short coordinator
// over stages that own their state and append what they decide to the request's trace
// (router/request_trace.h):
//
//   start():   identity → policy stage (request type, route, budget; gateway/routing.cpp)
//              → every tier's targets, resolved once (router/route_targets.h)
//              → cache stage (lookup, single flight; gateway/chat_exchange_cache.cpp)
//              → cascade (router/cascade.h) or the one requested model
//   observe(): the answer, as the relay split it (SSE events) or whole, feeding the
//              cache stage (store, followers) and the policy stage (scoring a live tier)
//   finish():  the live tier completed and priced → cache store → ledger row
//   commit():  waits until the ledger row is durable (before a 200's last bytes)
//
// The response headers and a stream's trailers are pure functions of the trace
// (gateway/trace_headers.h), read when the codec writes them; the ledger row is
// router::ledger_record(trace). The codecs (gateway/openai_chat.cpp,
// gateway/anthropic_messages.cpp) only parse requests and render answers; the sequence
// they share is serve_chat (gateway/chat_codec.h).
//
// Threading: one exchange per request, on its worker's thread.
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "cache/cache_key.h"
#include "cache/cached_response.h"
#include "cache/request_digest.h"
#include "config/config.h"
#include "core/chat.h"
#include "core/dialect.h"
#include "core/error.h"
#include "core/sse.h"
#include "core/usage.h"
#include "gateway/worker.h"
#include "policies/policy.h"
#include "router/dispatch.h"
#include "router/request_trace.h"
#include "router/route_targets.h"

namespace frugal::gateway {

using router::ExchangeEnd;
struct RouteState;  // the policy stage (gateway/routing.h)

// Client-chosen names longer than this are refused (400): they are echoed in headers,
// logs and the cost table.
inline constexpr size_t kMaxModelNameBytes = 256;
Error model_name_too_long(size_t bytes);

// x-frugal-cache-ttl: seconds, or a whole number with a unit (ms, s, m, h, d). Values
// too large to count in milliseconds saturate; nullopt for anything else (negative
// numbers, fractions, other units, trailing text).
std::optional<int64_t> parse_cache_ttl_ms(std::string_view v);

// The tenant id of an API key: a stable, non-reversible hash ("" for no key).
std::string tenant_id_of_key(std::string_view api_key);

class ChatExchange {
 public:
  ChatExchange(Worker& worker, RequestContext& ctx, const Request& http, Dialect dialect);
  ~ChatExchange();  // finishes as kClientGone with what was seen if the codec did not
  ChatExchange(const ChatExchange&) = delete;
  ChatExchange& operator=(const ChatExchange&) = delete;

  // Decides where the request goes and starts it. On success the call has its headers:
  // 2xx (body or stream follows), or a final upstream error (status >= 400) whose body
  // is complete. Errors are the gateway's own (unknown model, budget, cancelled).
  // `requested` (optional): the targets of the requested model, when the codec had to
  // resolve them already (they are not resolved again).
  boost::asio::awaitable<Result<std::shared_ptr<backends::Call>>> start(
      ChatRequest& req, std::optional<std::vector<router::Target>> requested = std::nullopt);

  // Cancels whatever start() is waiting on; the client watch calls it.
  router::DispatchControl& control() { return control_; }
  // The codec's client watch, handed to the worker's watch ticker once start() first waits
  // (disk lookup, single-flight, upstream). A memory cache hit never waits.
  void watch_client(ClientWatch& watch) { watch_ = &watch; }

  // The answer, parsed once by the codec's relay: each SSE event of a stream (the
  // provider's own events for Anthropic pass-through), or a whole body.
  void observe_event(const SseEvent& ev);
  void observe_body(std::string_view body);
  // Once, when the response is over, with the usage seen (partial for a cut stream or
  // a client that went away). Logged at debug level ("finish end=... usage ...").
  void finish(const Usage& usage, ExchangeEnd end);
  // start() failed with `e` before the request reached an answer source (budget,
  // unknown model, bad header): its telemetry is recorded with e's status.
  void refused(const Error& e);
  // Waits until this request's ledger row is written (durable against kill -9). Codecs
  // call it after finish() and before the last bytes of a successful response.
  boost::asio::awaitable<void> commit();

  // A final upstream error response (status >= 400) as an Error to render: the
  // upstream's message with every configured secret masked (its body never as it is).
  Error upstream_error(backends::Call& call) const;
  // Masks every configured secret in `text` (an upstream's error text about to be relayed).
  void mask_secrets(std::string& text) const;
  // An answer whose body failed to arrive whole (read_whole_body's error), to render.
  Error broken_answer(const Error& why) const;

  // The answering provider's limits (the defaults for a cache hit or a replayed tier).
  size_t max_answer_bytes() const;
  size_t max_sse_event_bytes() const;

  const router::RequestTrace& trace() const { return trace_; }
  // The configuration this request runs under (one snapshot for its whole life).
  const config::GatewayConfig& config() const { return *cfg_; }
  // The upstream model that answers; "" for a cache hit.
  const std::string& answer_upstream_model() const { return trace_.answer_upstream_model; }

 private:
  void log_finish(const Usage& usage) const;
  // The trace's end time and overhead, then its metrics, access-log line and warnings.
  void record_telemetry();
  const config::ProviderConfig* answer_provider() const;

  // --- policy stage (gateway/routing.cpp) ---
  Result<void> route(ChatRequest& req);  // facts, request type, route, budget → trace
  // --- limits (gateway/exchange_limits.cpp) ---
  Result<void> check_key_model(const ChatRequest& req) const;  // the key's allowed models
  // After classification: the key's routes, rpm/tpm, streams, budget reservations.
  Result<void> admit(const ChatRequest& req);
  const policies::RoutePlan& plan() const;
  // The route's plan (cache settings included); null without a policy route.
  const policies::RoutePlan* route_plan() const;
  // What the exact cache keys this request under: the route (or requested model) and
  // a target naming every tier of the route.
  std::string cache_route(const ChatRequest& req) const;
  router::Target cache_target(const router::Target& first) const;
  boost::asio::awaitable<Result<std::shared_ptr<backends::Call>>> dispatch_routed(ChatRequest& req);
  void policy_observe(const SseEvent* ev, std::string_view body);
  // The live tier's attempt, completed from how the answer ended.
  void complete_live_tier(const Usage& usage, ExchangeEnd end);
  // After a cache hit: the baseline of the stored answer's usage (it costs nothing).
  void on_cache_hit();
  // The baseline of the answer (trace.answer_usage) and the budget spend.
  void book();
  // The answer's baseline and who priced it (an unknown reference price is a pricing error).
  void set_baseline(Money baseline, policies::PriceSource source);
  void record_ledger_row();
  // The capture line (and the shadow call) of a captured request (gateway/capture_stage.cpp).
  void capture_finish();
  std::unique_ptr<RouteState> routing_;

  // --- cache stage (gateway/chat_exchange_cache.cpp) ---
  struct CacheState;
  // Decides cacheability and looks the request up; a hit (or a single-flight
  // follower's answer) comes back as a replay call, a miss as null.
  std::shared_ptr<const cache::CachedResponse> shared_cache_lookup(const cache::CacheKey& key);
  boost::asio::awaitable<std::shared_ptr<backends::Call>> cache_lookup(const ChatRequest& req,
                                                                       const std::string& route,
                                                                       const router::Target& target);
  void cache_started(const backends::Call& call);
  void cache_observe(const SseEvent* ev, std::string_view body);
  void cache_finish(const Usage& usage, ExchangeEnd end);
  std::shared_ptr<CacheState> cache_;  // shared_ptr: CacheState is defined in its own file
  std::optional<int64_t> client_ttl_ms_;  // x-frugal-cache-ttl, validated by start()
  // The request's canonical digest, shared by the cache key and the replica pick;
  // computed on first use (after route(), which settles the messages).
  const cache::RequestDigest& request_digest(const ChatRequest& req);
  std::optional<cache::RequestDigest> digest_;

  Worker& w_;
  RequestContext& ctx_;
  const Request& http_;
  std::shared_ptr<const config::GatewayConfig> cfg_;
  router::RequestTrace trace_;
  router::RouteTargets targets_;  // every tier's targets (replica hold released at finish)
  router::DispatchControl control_;
  ClientWatch* watch_ = nullptr;
  void about_to_wait() {
    if (watch_) watch_->defer(w_.watch_ticker);
  }
  bool started_ = false;
  Usage seen_usage_;
  uint64_t commit_batch_ = 0;  // the ledger lane batch holding the row, 0: none to wait for
};

}  // namespace frugal::gateway
