// POST /v1/chat/completions for OpenAI-dialect clients, streaming and not.
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdio>

#include "core/chat.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/sse.h"
#include "core/usage.h"
#include "gateway/log.h"
#include "gateway/server.h"
#include "gateway/worker.h"
#include "router/dispatch.h"

namespace frugal::gateway {

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Watches the client socket while the upstream works; a FIN or reset cancels the
// upstream transfer (and any retry backoff) at once.
struct DisconnectWatch : std::enable_shared_from_this<DisconnectWatch> {
  router::DispatchControl control;
  std::shared_ptr<http::HttpCall> streaming;
  bool client_gone = false;

  static void start(const std::shared_ptr<DisconnectWatch>& self, tcp::socket& s) {
    std::weak_ptr<DisconnectWatch> weak = self;
    const int fd = s.native_handle();
    s.async_wait(tcp::socket::wait_read, [weak, fd](const boost::system::error_code& ec) {
      if (ec) return;
      auto w = weak.lock();
      if (!w) return;
      char c;
      const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) return;  // a pipelined request, not a disconnect
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      w->client_gone = true;
      w->control.cancel();
      if (w->streaming) w->streaming->cancel();
    });
  }
};

// Ends the watch when the handler returns: no other operation is pending on the socket
// at that point, so cancel() only completes the wait.
struct WatchGuard {
  tcp::socket& s;
  ~WatchGuard() {
    boost::system::error_code ec;
    s.cancel(ec);
  }
};

// A usage block of a streamed chunk, if it carries one. Returns true for a
// usage-only chunk (no choices), which can be dropped for clients that did not ask.
bool inspect_chunk(std::string_view data, Usage& usage) {
  if (data.find("\"usage\"") == std::string_view::npos) return false;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(data.data(), data.size()).get(root)) return false;
  simdjson::dom::element u;
  if (root["usage"].get(u) || !u.is_object()) return false;
  usage = usage_from_openai(u);
  simdjson::dom::array choices;
  return root["choices"].get_array().get(choices) || choices.size() == 0;
}

Usage usage_of_completion(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root, u;
  if (parser.parse(body.data(), body.size()).get(root) || root["usage"].get(u)) return {};
  return usage_from_openai(u);
}

// Relays an upstream error response in OpenAI shape, keeping its status.
Error upstream_error(const router::Target& t, int status, std::string_view body) {
  thread_local simdjson::dom::parser parser;
  Error e;
  e.status = status;
  e.kind = status == 401 ? ErrorKind::kAuthentication
           : status == 403 ? ErrorKind::kPermission
           : status == 404 ? ErrorKind::kNotFound
           : status == 429 ? ErrorKind::kRateLimited
           : status < 500  ? ErrorKind::kInvalidRequest
                           : ErrorKind::kUpstream;
  std::string upstream_msg;
  simdjson::dom::element root, err;
  if (!parser.parse(body.data(), body.size()).get(root) && !root["error"].get(err)) {
    std::string_view s;
    if (err.is_object()) {
      if (!err["message"].get_string().get(s)) upstream_msg = s;
      if (!err["param"].get_string().get(s)) e.param = s;
      if (!err["code"].get_string().get(s)) e.code = s;
    } else if (!err.get_string().get(s)) {
      upstream_msg = s;
    }
  }
  if (upstream_msg.empty()) upstream_msg = std::string(body.substr(0, 300));
  const std::string who = "upstream '" + t.provider->name + "'";
  e.message = status == 401 || status == 403
                  ? who + " rejected the gateway's credentials (status " + std::to_string(status) + "): " + upstream_msg
                  : who + " returned status " + std::to_string(status) + ": " + upstream_msg;
  return e;
}

void hex_size(std::string& out, size_t n) {
  char buf[20];
  const int len = std::snprintf(buf, sizeof buf, "%zx\r\n", n);
  out.append(buf, static_cast<size_t>(len));
}

asio::awaitable<bool> write_raw(beast::tcp_stream& stream, const std::string& bytes) {
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(bytes), kTuple);
  co_return !ec;
}

// Streams the upstream's SSE events to the client as each one completes. Returns
// whether the connection can be kept alive.
asio::awaitable<bool> relay_stream(beast::tcp_stream& stream, http::HttpCall& call, const ChatRequest& chat,
                                   RequestContext& ctx, DisconnectWatch& watch) {
  std::string head = "HTTP/1.1 200 OK\r\nServer: frugal\r\nContent-Type: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
  head += "x-request-id: " + ctx.request_id + "\r\n";
  for (const auto& [k, v] : ctx.headers) head += k + ": " + v + "\r\n";
  head += "x-frugal-overhead-us: " + std::to_string(ctx.overhead_us(mono_us())) + "\r\n";
  head += ctx.keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!co_await write_raw(stream, head)) co_return false;

  SseParser sse;
  Usage usage;
  bool saw_done = false;
  std::string frame, events;
  for (;;) {
    std::string bytes = call.take_body();
    if (!bytes.empty()) {
      events.clear();
      sse.feed(bytes, [&](const SseEvent& ev) {
        if (ev.data == "[DONE]") {
          saw_done = true;
        } else if (inspect_chunk(ev.data, usage) && !chat.include_usage) {
          return;  // usage-only chunk the client did not ask for
        }
        events.append(ev.raw);
      });
      if (!events.empty()) {
        frame.clear();
        hex_size(frame, events.size());
        frame += events;
        frame += "\r\n";
        if (!co_await write_raw(stream, frame)) {
          call.cancel();
          co_return false;
        }
      }
    }
    if (call.state() == http::CallState::kDone && call.body().empty()) break;
    if (call.state() != http::CallState::kDone) co_await call.wait();
  }
  if (watch.client_gone) co_return false;
  frame.clear();
  if (!saw_done || call.failed() || sse.has_partial()) {
    const std::string why = call.failed() ? call.error() : sse.has_partial() ? "cut mid-event" : "ended without its terminator";
    log::warn("request " + ctx.request_id + ": upstream stream broke: " + why);
    Error e = make_error(ErrorKind::kUpstream, "The upstream stream was interrupted before completion (" + why + ").",
                         "", "upstream_stream_interrupted");
    const std::string ev = "data: " + render_openai_error_body(e) + "\n\n";
    hex_size(frame, ev.size());
    frame += ev;
    frame += "\r\n";
    ctx.keep_alive = false;
  }
  frame += "0\r\n\r\n";
  if (!co_await write_raw(stream, frame)) co_return false;
  co_return ctx.keep_alive;
}

}  // namespace

asio::awaitable<bool> handle_chat_completions(beast::tcp_stream& stream, Request& req, RequestContext& ctx,
                                              Worker& w) {
  const auto cfg = w.server.config();
  auto parser = w.acquire_parser();
  struct ParserReturn {
    Worker& w;
    std::unique_ptr<simdjson::dom::parser>& p;
    ~ParserReturn() { w.release_parser(std::move(p)); }
  } parser_return{w, parser};

  auto chat = parse_chat_body(*parser, req.body());
  if (!chat) co_return co_await send_openai_error(stream, chat.error(), ctx);
  auto targets = router::resolve_model(*cfg, chat->model);
  if (!targets) co_return co_await send_openai_error(stream, targets.error(), ctx);

  auto watch = std::make_shared<DisconnectWatch>();
  DisconnectWatch::start(watch, stream.socket());
  WatchGuard guard{stream.socket()};

  const int64_t dispatch_start = mono_us();
  router::DispatchResult r = co_await router::dispatch_chat(*w.client, *targets, *chat, watch->control);
  if (r.error) {
    ctx.upstream_wait_us = mono_us() - dispatch_start;
    if (r.error->kind == ErrorKind::kCancelled) co_return false;
    co_return co_await send_openai_error(stream, *r.error, ctx);
  }
  http::HttpCall& call = *r.call;
  ctx.headers.emplace_back("x-frugal-provider", r.target.provider->name);
  ctx.headers.emplace_back("x-frugal-model", r.target.model);
  if (r.attempts.size() > 1) ctx.headers.emplace_back("x-frugal-attempts", std::to_string(r.attempts.size()));

  if (call.status() >= 400) {
    ctx.upstream_wait_us = mono_us() - dispatch_start;
    co_return co_await send_openai_error(stream, upstream_error(r.target, call.status(), call.body()), ctx);
  }
  const std::string_view ctype = call.header("content-type");
  if (chat->stream && ctype.find("text/event-stream") != std::string_view::npos) {
    ctx.upstream_wait_us = call.headers_us() - dispatch_start;
    watch->streaming = r.call;
    co_return co_await relay_stream(stream, call, *chat, ctx, *watch);
  }
  while (call.state() != http::CallState::kDone) co_await call.wait();
  ctx.upstream_wait_us = mono_us() - dispatch_start;
  if (watch->client_gone) co_return false;
  if (call.failed()) {
    Error e = make_error(call.timed_out() ? ErrorKind::kTimeout : ErrorKind::kUpstream,
                         "upstream '" + r.target.provider->name + "' failed mid-response: " + call.error());
    co_return co_await send_openai_error(stream, e, ctx);
  }
  std::string body = call.take_body();
  (void)usage_of_completion(body);  // the ledger (cost layer) consumes this
  co_return co_await send_response(stream, call.status(), ctype.empty() ? "application/json" : ctype,
                                   std::move(body), ctx);
}

asio::awaitable<bool> handle_models(beast::tcp_stream& stream, Request&, RequestContext& ctx, Worker& w) {
  const auto cfg = w.server.config();
  const int64_t now = mono_us();
  if (w.models_cache.empty() || now - w.models_cache_us > 60'000'000) {
    std::string data;
    JsonWriter out(data);
    out.begin_array();
    std::vector<std::string> seen;
    for (const auto& a : cfg->aliases) {
      out.begin_object().key("id").value(a.name).key("object").value("model").key("created").value(0);
      out.key("owned_by").value("frugal").end_object();
      seen.push_back(a.name);
    }
    const int64_t t0 = mono_us();
    for (const auto& p : cfg->providers) {
      if (p.kind != config::ProviderKind::kOpenAi) continue;
      auto call = w.client->start(http::openai_models_request(p));
      while (call->state() != http::CallState::kDone) co_await call->wait();
      if (call->failed() || call->status() != 200) {
        log::warn("listing models of provider '" + p.name + "' failed: " +
                  (call->failed() ? call->error() : "status " + std::to_string(call->status())));
        continue;
      }
      thread_local simdjson::dom::parser parser;
      simdjson::dom::element root;
      simdjson::dom::array arr;
      if (parser.parse(call->body()).get(root) || root["data"].get_array().get(arr)) continue;
      for (auto m : arr) {
        std::string_view id;
        if (m["id"].get_string().get(id)) continue;
        if (std::find(seen.begin(), seen.end(), id) != seen.end()) continue;
        seen.emplace_back(id);
        out.raw(simdjson::minify(m));
      }
    }
    ctx.upstream_wait_us = mono_us() - t0;
    out.end_array();
    w.models_cache = R"({"object":"list","data":)" + data + "}";
    w.models_cache_us = now;
  }
  co_return co_await send_response(stream, 200, "application/json", w.models_cache, ctx);
}

}  // namespace frugal::gateway
