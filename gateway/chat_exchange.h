#pragma once
// The dialect-neutral middle of one chat request, between the client's codec (OpenAI
// relay, Anthropic translation) and the backends:
//
//   codec parses → ChatRequest (canonical, OpenAI vocabulary)
//   start():   resolve the model → [policy: request type, route, budget]
//              → [cache lookup] → dispatch (retries, fallbacks) or [cascade]
//   codec renders the Call's canonical bytes in its dialect, handing each one to
//   observe() and the final usage to finish(), then co_awaits commit() before the
//   response's last bytes (the ledger row is durable before a 200 completes) and, for a
//   stream, appends trailers() to its terminating chunk
//   finish():  [cache store] → [ledger row]
//
// A codec never needs to know whether an answer came from a cache, a buffered cascade
// tier or a live upstream: all three are backends::Call objects.
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
#include "config/config.h"
#include "core/chat.h"
#include "core/error.h"
#include "core/usage.h"
#include "gateway/worker.h"
#include "policies/policy.h"
#include "router/dispatch.h"
#include "router/ledger_record.h"

namespace frugal::cache {
class ReplicaPicker;
}

namespace frugal::gateway {

enum class Dialect { kOpenAi, kAnthropic };
struct RouteState;  // gateway/routing.h

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
const char* dialect_name(Dialect d);

// How the response to the client ended.
enum class ExchangeEnd {
  kComplete,      // the whole answer reached the client
  kUpstreamError, // the upstream (or gateway) answered with an error, relayed as such
  kUpstreamBroke, // the answer started and then broke (cut stream, missing terminator)
  kClientGone,    // the client disconnected or stopped reading
  kShutdown,      // cut by the gateway's shutdown after the grace period
};

class ChatExchange {
 public:
  ChatExchange(Worker& worker, RequestContext& ctx, const Request& http, Dialect dialect);
  ~ChatExchange();  // finishes as kClientGone with what was seen if the codec did not
  ChatExchange(const ChatExchange&) = delete;
  ChatExchange& operator=(const ChatExchange&) = delete;

  // Decides where the request goes and starts it. On success the call has its headers:
  // 2xx (body or stream follows), or a final upstream error (status >= 400) whose body
  // is complete. Errors are the gateway's own (unknown model, budget, cancelled).
  // Response headers (x-frugal-*) are added to the RequestContext.
  boost::asio::awaitable<Result<std::shared_ptr<backends::Call>>> start(ChatRequest& req);

  // Cancels whatever start() is waiting on; the client watch calls it.
  router::DispatchControl& control() { return control_; }
  // The codec's client watch, handed to the worker's watch ticker once start() first waits
  // (disk lookup, single-flight, upstream). A memory cache hit never waits.
  void watch_client(ClientWatch& watch) { watch_ = &watch; }

  // Every byte the codec took from the call, in order: canonical OpenAI bytes, or the
  // provider's Anthropic bytes when call->dialect() is WireDialect::kAnthropic
  // (pass-through of an Anthropic client to an Anthropic provider).
  void observe(std::string_view bytes);
  // Once, when the response is over, with the usage seen (partial for a cut stream or
  // a client that went away). Logged at debug level ("finish end=... usage ...").
  void finish(const Usage& usage, ExchangeEnd end);

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

  const router::Target& target() const { return target_; }

  // The exact cache's verdict for this request, and on a hit the usage the original
  // answer consumed (what the hit saved).
  router::CacheOutcome cache_outcome() const { return cache_outcome_; }
  const Usage& cache_saved_usage() const { return cache_saved_usage_; }
  // A stable, non-reversible id of the client's API key ("" without one).
  const std::string& tenant() const { return tenant_; }

  // --- policy, cascade and ledger (defined in gateway/routing.cpp) ---
  // Waits until this request's ledger row is written (durable against kill -9). Codecs
  // call it after finish() and before the last bytes of a successful response.
  boost::asio::awaitable<void> commit();
  // Final cost figures as HTTP trailers for a stream (whose headers went out before
  // the answering tier's usage was known). Valid after finish().
  std::vector<std::pair<std::string, std::string>> trailers() const;
  // The route's plan (cache settings included); null before start() or without a policy route.
  const policies::RoutePlan* route_plan() const;

 private:
  void log_finish(const Usage& usage, ExchangeEnd end) const;
  // --- exact cache (gateway/chat_exchange_cache.cpp) ---
  struct CacheState;
  // Decides cacheability and looks the request up; a hit (or a single-flight
  // follower's answer) comes back as a replay call, a miss as null.
  boost::asio::awaitable<std::shared_ptr<backends::Call>> cache_lookup(const ChatRequest& req,
                                                                       const std::string& route,
                                                                       const router::Target& target);
  void cache_started(const backends::Call& call);
  void cache_observe(std::string_view bytes);
  void cache_finish(const Usage& usage, ExchangeEnd end);
  std::shared_ptr<CacheState> cache_;  // shared_ptr: CacheState is defined in its own file
  router::CacheOutcome cache_outcome_ = router::CacheOutcome::kNone;
  std::optional<int64_t> client_ttl_ms_;  // x-frugal-cache-ttl, validated by start()
  // Replica affinity: the picker and replica this request holds a load slot on.
  std::shared_ptr<cache::ReplicaPicker> picker_;
  size_t replica_ = 0;
  Usage cache_saved_usage_;
  std::string tenant_;

  Worker& w_;
  RequestContext& ctx_;
  const Request& http_;
  Dialect dialect_;
  std::shared_ptr<const config::GatewayConfig> cfg_;
  router::DispatchControl control_;
  ClientWatch* watch_ = nullptr;
  void about_to_wait() {
    if (watch_) watch_->defer(w_.watch_ticker);
  }
  router::Target target_;
  bool started_ = false;
  bool finished_ = false;
  Usage seen_usage_;

  // --- policy, cascade and ledger (gateway/routing.cpp) ---
  Result<void> route(ChatRequest& req);  // facts, request type, route, budget
  // The targets of the route's first tier, or of the requested model when no route applies.
  Result<std::vector<router::Target>> first_targets(const ChatRequest& req) const;
  // What the exact cache keys this request under: the route (or requested model) and
  // a target naming every tier of the route.
  std::string cache_route(const ChatRequest& req) const;
  router::Target cache_target(const router::Target& first) const;
  boost::asio::awaitable<Result<std::shared_ptr<backends::Call>>> dispatch_routed(
      ChatRequest& req, const std::vector<router::Target>& first_targets);
  void observe_routed(std::string_view bytes);
  void record(const Usage& usage, ExchangeEnd end);
  // After a cache hit: books cost 0 and the baseline of cache_saved_usage_.
  void on_cache_hit();
  std::unique_ptr<RouteState> routing_;
};

}  // namespace frugal::gateway
