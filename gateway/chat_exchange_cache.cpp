// The exact cache in the request path: key, lookup (memory, then RocksDB off the I/O
// thread), single-flight for concurrent identical misses, recording of the canonical
// bytes, and the store of complete successful answers only.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <strings.h>

#include <charconv>
#include <optional>

#include "backends/dialect/openai_stream_assembly.h"
#include "backends/replay_call.h"
#include "cache/asio_lookup.h"
#include "cache/cache_key.h"
#include "cache/exact_cache.h"
#include "cache/single_flight.h"
#include "core/ids.h"
#include "core/sse.h"
#include "core/sse_writer.h"
#include "gateway/chat_exchange.h"
#include "core/log.h"
#include "gateway/server.h"
#include "gateway/shared_state.h"

namespace frugal::gateway {

namespace {

constexpr size_t kMaxRecordedBytes = 8u << 20;  // larger answers are served, not stored

bool has_directive(std::string_view cache_control, std::string_view directive) {
  size_t pos = 0;
  while (pos < cache_control.size()) {
    size_t end = cache_control.find(',', pos);
    if (end == std::string_view::npos) end = cache_control.size();
    std::string_view tok = cache_control.substr(pos, end - pos);
    while (!tok.empty() && tok.front() == ' ') tok.remove_prefix(1);
    while (!tok.empty() && tok.back() == ' ') tok.remove_suffix(1);
    if (tok.size() == directive.size() &&
        std::equal(tok.begin(), tok.end(), directive.begin(),
                   [](char a, char b) { return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b; }))
      return true;
    pos = end + 1;
  }
  return false;
}


std::shared_ptr<backends::Call> replay(const cache::CachedResponse& e, bool stream) {
  // An entry keeps the form its answer came in; the other form is derived here.
  if (stream) {
    std::string body;
    if (!e.chunks.empty()) {
      append_sse_stream(body, e.chunks);
    } else {
      auto chunks = chunks_from_completion(e.completion_json);
      if (!chunks) return nullptr;
      append_sse_stream(body, *chunks);
    }
    return std::make_shared<backends::ReplayCall>(200, "text/event-stream", std::move(body));
  }
  auto body = e.completion_json.empty() ? assemble_completion_from_chunks(e.chunks)
                                        : Result<std::string>(e.completion_json);
  if (!body) return nullptr;
  return std::make_shared<backends::ReplayCall>(200, "application/json", std::move(*body));
}

// A streamed answer another request is receiving from upstream right now (single
// flight): chunks are fed as the leader publishes them; the call ends with [DONE] when
// the leader completes, or fails (an interrupted stream) when it does not.
class FollowerCall final : public backends::Call {
 public:
  FollowerCall(boost::asio::io_context& io, std::string first_events)
      : signal_(io), body_(std::move(first_events)), started_us_(mono_us()) {}

  void feed(std::string_view events) {
    body_.append(events);
    notify();
  }
  void finish(bool ok) {
    if (ok) append_sse_done(body_);
    else error_ = "the request this one was following failed mid-stream";
    done_ = true;
    notify();
  }

  boost::asio::awaitable<void> wait() override {
    if (!pending_) {
      signal_.expires_at(boost::asio::steady_timer::time_point::max());
      co_await signal_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    pending_ = false;
  }
  backends::CallState state() const override {
    return done_ ? backends::CallState::kDone : backends::CallState::kStreaming;
  }
  int status() const override { return 200; }
  bool got_headers() const override { return true; }
  std::string_view header(std::string_view name) const override {
    return name.size() == 12 && ::strncasecmp(name.data(), "content-type", 12) == 0 ? "text/event-stream"
                                                                                  : std::string_view{};
  }
  std::string take_body() override { return std::exchange(body_, {}); }
  const std::string& body() const override { return body_; }
  bool timed_out() const override { return false; }
  bool cancelled() const override { return cancelled_; }
  const std::string& error() const override { return error_; }
  void cancel() override {
    cancelled_ = done_ = true;
    if (error_.empty()) error_ = "cancelled";
    notify();
  }
  int64_t started_us() const override { return started_us_; }
  int64_t headers_us() const override { return started_us_; }

 private:
  void notify() {
    pending_ = true;
    signal_.cancel();
  }
  boost::asio::steady_timer signal_;
  std::string body_;
  std::string error_;
  bool done_ = false, pending_ = false, cancelled_ = false;
  int64_t started_us_;
};

}  // namespace

struct ChatExchange::CacheState {
  bool store = false;
  cache::CacheKey key{};
  int64_t ttl_ms = 0;
  std::string route;
  std::string model;
  bool leader_active = false;
  cache::SingleFlight::Leader leader;
  bool sse = false;
  bool overflow = false;
  bool saw_done = false;
  size_t recorded_bytes = 0;
  std::vector<std::string> chunks;  // a stream's event payloads, [DONE] excluded
  std::string completion;           // a whole answer
  int status = 0;
};

// The shared tier (shared_state.shared_cache): one bounded Redis round trip after a
// local miss. An entry that fails to decode (torn, foreign, garbage) or has expired is
// a miss; a good one is copied into the local tiers for its remaining life.
std::shared_ptr<const cache::CachedResponse> ChatExchange::shared_cache_lookup(const cache::CacheKey& key) {
  SharedState* shared = w_.server.shared_state();
  if (!shared || !shared->config().shared_cache) return nullptr;
  auto bytes = shared->cache_get(key.to_hex());
  if (!bytes || !*bytes) return nullptr;
  auto entry = cache::decode_entry(**bytes);
  if (!entry) {
    log::warn("request " + ctx_.request_id + ": a shared cache entry failed to decode (" + entry.error().message +
              "); treated as a miss");
    return nullptr;
  }
  const int64_t now_ms = wall_us() / 1000;
  if (entry->expired_at(now_ms)) return nullptr;
  const int64_t left_ms = entry->expires_at_ms ? entry->expires_at_ms - now_ms : 0;
  return w_.server.cache().store(key, std::move(*entry), std::chrono::milliseconds(left_ms));
}

boost::asio::awaitable<std::shared_ptr<backends::Call>> ChatExchange::cache_lookup(const ChatRequest& req,
                                                                                   const std::string& route,
                                                                                   const router::Target& target) {
  const config::CacheConfig& cc = cfg_->cache;
  const auto rit = cc.routes.find(route);
  const config::CacheRouteConfig rc = rit == cc.routes.end() ? config::CacheRouteConfig{} : rit->second;
  bool enabled = rc.enabled.value_or(cc.enabled);
  const bool cache_all = rc.cache_all.value_or(cc.cache_all);
  int64_t ttl_ms = rc.ttl_ms.value_or(cc.ttl_ms);
  if (const policies::RoutePlan* plan = route_plan(); plan && plan->cache.configured) {
    enabled = plan->cache.enabled;  // the policy route's own `cache:` wins
    ttl_ms = plan->cache.ttl_ms;
  }
  const bool shared = rc.shared.value_or(cc.shared);

  const auto cc_field = http_.find(bhttp::field::cache_control);
  const std::string_view cache_control =
      cc_field == http_.end() ? std::string_view{} : std::string_view(cc_field->value());
  const bool no_store = has_directive(cache_control, "no-store");
  const bool no_cache = has_directive(cache_control, "no-cache");
  bool store = true;
  if (client_ttl_ms_) {
    // A TTL of 0 in the header means "do not keep this one" (like max-age=0); others
    // are capped by cache.max_ttl (never "never expires").
    if (*client_ttl_ms_ == 0) store = false;
    else ttl_ms = cc.max_ttl_ms > 0 ? std::min(*client_ttl_ms_, cc.max_ttl_ms) : *client_ttl_ms_;
  }
  // Anthropic pass-through (an Anthropic client routed to an Anthropic provider) is
  // answered with the provider's own bytes, for a body the canonical request does not
  // fully describe (cache_control, fields only Anthropic knows): not cached.
  const bool passthrough =
      !req.anthropic_body.empty() && target.provider->kind == config::ProviderKind::kAnthropic;
  const bool cacheable =
      !passthrough && enabled && !no_store && (cache_all || cache::is_cacheable_by_default(req));
  if (!cacheable) {
    trace_.cache.outcome = router::CacheOutcome::kBypass;
    co_return nullptr;
  }

  cache_ = std::make_shared<CacheState>();
  CacheState& st = *cache_;
  st.store = store;
  st.ttl_ms = ttl_ms;
  st.route = route;
  st.model = target.model;
  cache::KeyScope scope;
  scope.route = route;
  scope.upstream_model = target.provider->name + "/" + target.model;
  scope.tenant = shared ? std::string() : trace_.key_id;
  scope.shared = shared;
  st.key = cache::make_cache_key(request_digest(req), req, scope);

  cache::ExactCache& cache = w_.server.cache();
  auto hit_of = [&](const std::shared_ptr<const cache::CachedResponse>& e) -> std::shared_ptr<backends::Call> {
    auto call = replay(*e, req.stream);
    if (!call) return nullptr;
    st.store = false;
    trace_.cache.outcome = router::CacheOutcome::kHit;
    trace_.cache.saved_usage = e->usage;
    trace_.cache.model = e->model;
    return call;
  };

  if (!no_cache) {
    std::optional<cache::LookupResult> now = cache.lookup_now(st.key);
    std::shared_ptr<const cache::CachedResponse> entry = now ? now->entry : nullptr;
    if (!now) {
      about_to_wait();
      const int64_t t0 = mono_us();
      cache::LookupResult r = co_await cache::async_lookup(cache, st.key, w_.io.get_executor(), boost::asio::use_awaitable);
      ctx_.upstream_wait_us += mono_us() - t0;  // disk I/O on the read pool, not frugal's CPU
      trace_.cache.wait_us += mono_us() - t0;
      entry = r.entry;
    }
    if (!entry) entry = shared_cache_lookup(st.key);
    if (entry)
      if (auto call = hit_of(entry)) co_return call;
  }

  // A miss. Concurrent identical misses share one upstream call: the first leads,
  // the rest wait for its stored answer. A refresh (no-cache) always goes upstream.
  if (!no_cache && store) {
    // A follower learns the leader's chunks as they are published and its outcome.
    struct Wait {
      explicit Wait(boost::asio::io_context& io) : timer(io) {}
      boost::asio::steady_timer timer;
      std::optional<cache::FlightOutcome> outcome;
      std::string events;  // SSE of the chunks not yet handed to `live`
      size_t chunks = 0;
      std::shared_ptr<FollowerCall> live;
    };
    auto wait = std::make_shared<Wait>(w_.io);
    wait->timer.expires_at(boost::asio::steady_timer::time_point::max());
    boost::asio::io_context& io = w_.io;
    auto on_done = [wait, &io](const cache::FlightOutcome& o) {
      boost::asio::post(io, [wait, o] {
        wait->outcome = o;
        if (wait->live) wait->live->finish(o.ok());
        wait->timer.cancel();
      });
    };
    cache::SingleFlight::ChunkFn on_chunk;
    if (req.stream) {
      on_chunk = [wait, &io](std::string_view chunk) {
        boost::asio::post(io, [wait, c = std::string(chunk)] {
          ++wait->chunks;
          std::string ev;
          append_sse_event(ev, c);
          if (wait->live) wait->live->feed(ev);
          else wait->events += ev;
          wait->timer.cancel();
        });
      };
    }
    st.leader = w_.server.flights().join(st.key, on_done, on_chunk);
    if (st.leader) {
      st.leader_active = true;
    } else {
      // Streams follow the leader chunk by chunk from its first chunk on; plain requests
      // (and streams whose leader publishes none, e.g. a plain leader) take the stored
      // answer. A leader that fails before its first chunk sends us upstream ourselves.
      about_to_wait();
      const int64_t t0 = mono_us();
      control_.set_waiter(&wait->timer);
      while (!wait->outcome && wait->chunks == 0 && !control_.cancelled())
        co_await wait->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      control_.set_waiter(nullptr);
      ctx_.upstream_wait_us += mono_us() - t0;
      trace_.cache.wait_us += mono_us() - t0;
      if (wait->outcome && wait->outcome->ok())
        if (auto call = hit_of(wait->outcome->entry)) co_return call;
      if (!wait->outcome && wait->chunks > 0) {
        wait->live = std::make_shared<FollowerCall>(w_.io, std::move(wait->events));
        st.store = false;
        trace_.cache.outcome = router::CacheOutcome::kHit;
        trace_.cache.follower = true;
        trace_.cache.model = target.model;
        co_return wait->live;
      }
      // The leader failed or was abandoned: go upstream ourselves.
    }
  }
  trace_.cache.outcome = router::CacheOutcome::kMiss;
  co_return nullptr;
}

void ChatExchange::cache_started(const backends::Call& call) {
  if (!cache_ || !cache_->store) return;
  // A fallback target answered in its own dialect (pass-through): nothing canonical to keep.
  if (call.dialect() != Dialect::kOpenAi) {
    cache_->store = false;
    return;
  }
  cache_->status = call.status();
  cache_->model = trace_.answer_upstream_model;  // the answering tier's (a cascade's may differ from the first)
  cache_->sse = call.header("content-type").find("text/event-stream") != std::string_view::npos;
}

// The relay's events (or the whole body): published to followers and kept for the store.
void ChatExchange::cache_observe(const SseEvent* ev, std::string_view body) {
  if (!cache_ || !cache_->store) return;
  CacheState& st = *cache_;
  if (ev) {
    if (!st.sse) return;
    if (ev->data == "[DONE]") {
      st.saw_done = true;
      return;
    }
    if (ev->data.empty()) return;
    if (st.leader_active) st.leader.publish_chunk(ev->data);
  }
  if (st.overflow) return;
  const std::string_view bytes = ev ? ev->data : body;
  if (st.recorded_bytes + bytes.size() > kMaxRecordedBytes) {
    st.overflow = true;
    st.chunks = {};
    st.completion = std::string();
    return;
  }
  st.recorded_bytes += bytes.size();
  if (ev) st.chunks.emplace_back(bytes);
  else st.completion.append(bytes);
}

void ChatExchange::cache_finish(const Usage& usage, ExchangeEnd end) {
  if (!cache_) return;
  CacheState& st = *cache_;
  const bool complete = st.store && end == ExchangeEnd::kComplete && st.status >= 200 && st.status < 300;
  if (!complete) {
    if (st.leader_active) st.leader.fail(make_error(ErrorKind::kUpstream, "the leading request did not complete"));
    return;
  }
  if (st.overflow || st.recorded_bytes == 0) {
    // Complete but too large to keep: followers streaming along finish cleanly; the
    // others find no answer in the (empty) entry and go upstream themselves.
    if (st.leader_active) st.leader.succeed(std::make_shared<const cache::CachedResponse>());
    return;
  }
  cache::CachedResponse entry;
  if (st.sse) {
    if (!st.saw_done || st.chunks.empty()) {
      if (st.leader_active) st.leader.fail(make_error(ErrorKind::kUpstream, "incomplete stream"));
      return;
    }
    entry.chunks = std::move(st.chunks);
  } else {
    entry.completion_json = std::move(st.completion);
  }
  entry.model = st.model;
  entry.usage = usage;
  entry.created_s = wall_us() / 1'000'000;
  entry.route = st.route;
  entry.tenant = trace_.key_id;
  auto stored = w_.server.cache().store(st.key, std::move(entry), std::chrono::milliseconds(st.ttl_ms));
  if (SharedState* shared = w_.server.shared_state(); shared && shared->config().shared_cache && st.ttl_ms > 0)
    shared->cache_put(st.key.to_hex(), cache::encode_entry(*stored), st.ttl_ms);
  if (st.leader_active) st.leader.succeed(std::move(stored));
}

}  // namespace frugal::gateway
