#include "gateway/chat_codec.h"

#include "backends/whole_body.h"
#include "core/ids.h"
#include "core/log.h"
#include "gateway/server.h"
#include "gateway/sse_relay.h"
#include "gateway/trace_headers.h"

namespace frugal::gateway {

namespace {

// Streams the upstream's events to the client as each one completes.
asio::awaitable<bool> relay_stream(ClientSocket& stream, backends::Call& call, RequestContext& ctx,
                                   ChatExchange& ex, ClientWatch& watch, ChatCodec& codec) {
  codec.begin_stream(ex, call);
  const std::function<Usage()> usage = [&] { return codec.stream_usage(call); };
  if (!co_await write_raw(stream, sse_response_head(ctx))) {
    call.cancel();
    ex.finish(usage(), ExchangeEnd::kClientGone);
    co_return false;
  }
  SseParser sse(ex.max_sse_event_bytes());
  // Named, not a temporary in the co_await expression: GCC 12 destroys those twice.
  const std::function<void(const SseEvent&, std::string&)> on_event = [&](const SseEvent& ev, std::string& out) {
    const size_t from = out.size();
    codec.on_event(ev, out);
    if (ev.data.find("\"error\"") != std::string_view::npos && out.size() > from) {
      // An upstream's error text may echo its key.
      std::string relayed = out.substr(from);
      ex.mask_secrets(relayed);
      out.replace(from, std::string::npos, relayed);
    }
  };
  if (!co_await pump_sse_events(stream, call, ex, watch, sse, on_event, usage)) co_return false;
  const bool complete = codec.stream_complete(call, sse);
  const std::string why = sse.overflowed()     ? overflow_reason(sse)
                          : call.failed()      ? call.error()
                          : sse.has_partial() ? std::string("cut mid-event")
                                              : std::string("ended without its terminator");
  ex.finish(usage(), complete ? ExchangeEnd::kComplete : ExchangeEnd::kUpstreamBroke);
  std::string frame;
  if (complete) {
    // The stream looks complete to a client only once its last event arrives: by then
    // its ledger row is durable.
    co_await ex.commit();
  } else {
    log::warn("request " + ctx.request_id + ": upstream stream broke: " + why);
    ctx.keep_alive = false;
  }
  const Error cut = watch.shutdown ? shutdown_cut_error()
                                   : make_error(ErrorKind::kUpstream,
                                                "The upstream stream was interrupted before completion (" + why + ").",
                                                "", "upstream_stream_interrupted");
  if (const std::string tail = codec.stream_tail(complete, cut); !tail.empty()) append_http_chunk(frame, tail);
  append_last_chunk(frame, trailers(ex.trace()));  // the final cost figures
  if (!co_await write_raw(stream, frame)) co_return false;
  co_return ctx.keep_alive;
}

}  // namespace

asio::awaitable<bool> serve_chat(ClientSocket& stream, RequestContext& ctx, ChatExchange& ex, ChatCodec& codec,
                                 ChatRequest& req, std::optional<std::vector<router::Target>> requested) {
  auto watch = ClientWatch::make(stream, ex.control());
  ClientWatchGuard guard{*watch};
  ex.watch_client(*watch);

  auto started = co_await ex.start(req, std::move(requested));
  if (!started) {
    ex.refused(watch->shutdown ? shutdown_cut_error() : started.error());
    if (watch->shutdown) co_return co_await codec.send_error(stream, shutdown_cut_error(), ctx);
    if (started.error().kind == ErrorKind::kCancelled) co_return false;
    co_return co_await codec.send_error(stream, started.error(), ctx);
  }
  std::shared_ptr<backends::Call> call = std::move(*started);
  if (call->status() >= 400) {
    ex.finish({}, ExchangeEnd::kUpstreamError);
    co_return co_await codec.send_error(stream, ex.upstream_error(*call), ctx);
  }
  if (req.stream && call->header("content-type").find("text/event-stream") != std::string_view::npos) {
    watch->streaming = call;
    co_return co_await relay_stream(stream, *call, ctx, ex, *watch, codec);
  }
  const int64_t t0 = mono_us();
  auto whole = co_await backends::read_whole_body(*call, ex.max_answer_bytes());
  ctx.upstream_wait_us += mono_us() - t0;
  if (watch->client_gone) co_return false;  // the exchange finishes as kClientGone
  if (!whole) {
    ex.finish({}, ExchangeEnd::kUpstreamBroke);
    co_return co_await codec.send_error(stream, watch->shutdown ? shutdown_cut_error() : ex.broken_answer(whole.error()),
                                        ctx);
  }
  ex.observe_body(*whole);
  auto rendered = codec.render_body(ex, *call, std::move(*whole));
  if (!rendered) {
    ex.finish({}, ExchangeEnd::kUpstreamBroke);
    co_return co_await codec.send_error(stream, rendered.error(), ctx);
  }
  ex.finish(rendered->usage, ExchangeEnd::kComplete);
  co_await ex.commit();  // the ledger row is durable before the 200 goes out
  co_return co_await send_response(stream, rendered->status, rendered->content_type, std::move(rendered->body), ctx);
}

}  // namespace frugal::gateway
