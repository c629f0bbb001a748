// POST /v1/chat/completions for OpenAI-dialect clients, streaming and not.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdio>

#include "backends/dialect/errors.h"
#include "backends/whole_body.h"
#include "core/chat.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/sse.h"
#include "core/usage.h"
#include "core/log.h"
#include "gateway/server.h"
#include "gateway/worker.h"
#include "gateway/chat_exchange.h"
#include "gateway/client_watch.h"
#include "gateway/sse_relay.h"
#include "router/dispatch.h"

namespace frugal::gateway {

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

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

// Streams the upstream's SSE events to the client as each one completes. Returns
// whether the connection can be kept alive.
asio::awaitable<bool> relay_stream(ClientSocket& stream, backends::Call& call, const ChatRequest& chat,
                                   RequestContext& ctx, ChatExchange& ex, ClientWatch& watch) {
  if (!co_await write_raw(stream, sse_response_head(ctx))) co_return false;

  SseParser sse(ex.max_sse_event_bytes());
  Usage usage;
  // What to hand off when the stream ends early: the usage chunk if one came, else what
  // the backend saw but could not put into bytes yet (e.g. Anthropic's message_start).
  const std::function<Usage()> seen = [&] { return usage.reported ? usage : call.usage_so_far(); };
  bool saw_done = false;
  // Named, not a temporary in the co_await expression: GCC 12 destroys those twice.
  const std::function<void(const SseEvent&, std::string&)> on_event = [&](const SseEvent& ev, std::string& out) {
    if (ev.data == "[DONE]") {
      saw_done = true;  // held back until the ledger row is written (below)
      return;
    }
    if (inspect_chunk(ev.data, usage) && !chat.include_usage) return;  // usage-only chunk not asked for
    if (ev.data.find("\"error\"") != std::string_view::npos) {  // an upstream's error text may echo its key
      std::string raw(ev.raw);
      ex.mask_secrets(raw);
      out += raw;
      return;
    }
    out.append(ev.raw);
  };
  if (!co_await pump_sse_events(stream, call, ex, watch, sse, on_event, seen)) co_return false;
  std::string frame;
  const bool broke = !saw_done || call.failed() || sse.has_partial();
  ex.finish(seen(), broke ? ExchangeEnd::kUpstreamBroke : ExchangeEnd::kComplete);
  if (!broke) {
    // The stream looks complete to a client only once [DONE] arrives: by then its
    // ledger row is durable.
    co_await ex.commit();
    append_http_chunk(frame, "data: [DONE]\n\n");
  } else {
    const std::string why = sse.overflowed() ? overflow_reason(sse)
                            : call.failed()  ? call.error()
                            : sse.has_partial() ? "cut mid-event"
                                                : "ended without its terminator";
    log::warn("request " + ctx.request_id + ": upstream stream broke: " + why);
    Error e = watch.shutdown ? shutdown_cut_error()
                             : make_error(ErrorKind::kUpstream,
                                          "The upstream stream was interrupted before completion (" + why + ").", "",
                                          "upstream_stream_interrupted");
    append_http_chunk(frame, render_openai_error_event(e));
    ctx.keep_alive = false;
  }
  append_last_chunk(frame, ex.trailers());  // the final cost figures as trailers
  if (!co_await write_raw(stream, frame)) co_return false;
  co_return ctx.keep_alive;
}

}  // namespace

asio::awaitable<bool> handle_chat_completions(ClientSocket& stream, Request& req, RequestContext& ctx,
                                              Worker& w) {
  ParserLease parser(w);
  auto chat = parse_chat_body(*parser.p, req.body());
  if (!chat) co_return co_await send_openai_error(stream, chat.error(), ctx);

  ChatExchange ex(w, ctx, req, Dialect::kOpenAi);
  auto watch = ClientWatch::make(stream, ex.control());
  ClientWatchGuard guard{*watch};
  ex.watch_client(*watch);

  auto started = co_await ex.start(*chat);
  if (!started) {
    if (watch->shutdown) co_return co_await send_openai_error(stream, shutdown_cut_error(), ctx);
    if (started.error().kind == ErrorKind::kCancelled) co_return false;
    co_return co_await send_openai_error(stream, started.error(), ctx);
  }
  std::shared_ptr<backends::Call> call = std::move(*started);
  if (call->status() >= 400) {
    ex.finish({}, ExchangeEnd::kUpstreamError);
    co_return co_await send_openai_error(stream, ex.upstream_error(*call), ctx);
  }
  const std::string_view ctype = call->header("content-type");
  if (chat->stream && ctype.find("text/event-stream") != std::string_view::npos) {
    watch->streaming = call;
    co_return co_await relay_stream(stream, *call, *chat, ctx, ex, *watch);
  }
  const int64_t t0 = mono_us();
  auto whole = co_await backends::read_whole_body(*call, ex.max_answer_bytes());
  ctx.upstream_wait_us += mono_us() - t0;
  if (watch->client_gone) co_return false;
  if (!whole) {
    ex.finish({}, ExchangeEnd::kUpstreamBroke);
    co_return co_await send_openai_error(
        stream, watch->shutdown ? shutdown_cut_error() : ex.broken_answer(whole.error()), ctx);
  }
  std::string body = std::move(*whole);
  ex.observe(body);
  ex.finish(usage_of_openai_body(body), ExchangeEnd::kComplete);
  co_await ex.commit();  // the ledger row is durable before the 200 goes out
  co_return co_await send_response(stream, call->status(), ctype.empty() ? "application/json" : ctype,
                                   std::move(body), ctx);
}

}  // namespace frugal::gateway
