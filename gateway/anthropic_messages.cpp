// POST /v1/messages and /v1/messages/count_tokens for Anthropic-dialect clients.
//
// A Messages request is validated with parse_anthropic_request and then goes through
// ChatExchange like any other, carrying two forms of itself:
//  - the canonical translation (anthropic_to_openai_request → ChatRequest), which
//    OpenAI-compatible targets are sent and policies read;
//  - the client's body (ChatRequest::anthropic_body), which an Anthropic target
//    forwards untouched apart from `model` (pass-through: cache_control and unknown
//    fields arrive byte for byte).
// A request the OpenAI dialect cannot express is a 400 when one of its targets needs the
// translation; when every target is an Anthropic provider it passes through anyway.
//
// The Call that comes back says which dialect its bytes are in:
//   WireDialect::kAnthropic — relayed as they are, AnthropicUsageTracker watching usage;
//   WireDialect::kOpenAi    — rendered with OpenAiToAnthropicStream /
//                             openai_to_anthropic_response.
// Either way the client gets Anthropic's event sequence, and errors in Anthropic's shape
// (`{"type":"error","error":{...}}`, or an `error` event once a stream has started).
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <string>
#include <vector>

#include "backends/dialect/anthropic_request.h"
#include "backends/dialect/errors.h"
#include "backends/dialect/responses.h"
#include "backends/dialect/streams.h"
#include "backends/dialect/usage_json.h"
#include "backends/http/anthropic_backend.h"
#include "backends/whole_body.h"
#include "config/secrets.h"
#include "router/dispatch.h"
#include "core/chat.h"
#include "core/ids.h"
#include "core/sse.h"
#include "core/text.h"
#include "gateway/chat_exchange.h"
#include "gateway/client_watch.h"
#include "gateway/sse_relay.h"
#include "core/log.h"
#include "gateway/server.h"
#include "gateway/worker.h"

namespace frugal::gateway {

namespace {

// Client headers an Anthropic upstream must see (ChatRequest::upstream_headers).
constexpr std::string_view kForwardedHeaders[] = {"anthropic-version", "anthropic-beta"};

std::vector<std::pair<std::string, std::string>> forwarded_headers(const Request& req) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string_view name : kForwardedHeaders) {
    const auto it = req.find(name);
    if (it == req.end()) continue;
    const std::string_view v = it->value();
    if (has_line_break(v)) continue;  // never split an upstream header
    out.emplace_back(std::string(name), std::string(v));
  }
  return out;
}

Error body_not_json(simdjson::error_code ec) {
  return make_error(ErrorKind::kInvalidRequest,
                    std::string("The request body is not valid JSON: ") + simdjson::error_message(ec));
}

bool every_target_anthropic(const std::vector<router::Target>& targets) {
  for (const auto& t : targets)
    if (t.provider->kind != config::ProviderKind::kAnthropic) return false;
  return true;
}

Usage usage_of_message(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root, u;
  AnthropicUsage au;
  if (!parser.parse(body.data(), body.size()).get(root) && !root["usage"].get(u)) au.merge(u);
  return au.to_usage();
}

Error stream_interrupted(const std::string& why) {
  return make_error(ErrorKind::kUpstream, "The upstream stream was interrupted before completion (" + why + ").",
                    "", "upstream_stream_interrupted");
}

// Writes the SSE response: the provider's events as they are (pass-through) or the
// canonical chunks translated, each write as soon as its events are complete. Ends a
// broken stream with an `error` event (never a clean message_stop) and hands the usage
// seen so far to the exchange in every case, the client's disconnect included.
asio::awaitable<bool> stream_messages(ClientSocket& stream, backends::Call& call, RequestContext& ctx,
                                      ChatExchange& ex, ClientWatch& watch, const std::string& model) {
  const bool native = call.dialect() == backends::WireDialect::kAnthropic;
  AnthropicUsageTracker tracker;
  OpenAiToAnthropicStream translator(OpenAiToAnthropicStream::Options{model, "", 0});
  bool relayed_error_event = false;
  const std::function<Usage()> usage = [&] {
    if (native) return tracker.current_usage();
    const Usage u = translator.current_usage();
    return u.reported ? u : call.usage_so_far();
  };

  if (!co_await write_raw(stream, sse_response_head(ctx))) {
    call.cancel();
    ex.finish(usage(), ExchangeEnd::kClientGone);
    co_return false;
  }
  SseParser sse(ex.max_sse_event_bytes());
  // Named, not a temporary in the co_await expression: GCC 12 destroys those twice.
  const std::function<void(const SseEvent&, std::string&)> on_event = [&](const SseEvent& ev, std::string& out) {
    const size_t from = out.size();
    if (native) {
      if (ev.event == "error") relayed_error_event = true;
      tracker.observe(ev);
      out.append(ev.raw);
    } else {
      (void)translator.feed(ev, out);  // a failure has written its error event
    }
    if (ev.data.find("\"error\"") != std::string_view::npos) {  // an upstream's error text may echo its key
      std::string relayed = out.substr(from);
      ex.mask_secrets(relayed);
      out.replace(from, std::string::npos, relayed);
    }
  };
  if (!co_await pump_sse_events(stream, call, ex, watch, sse, on_event, usage)) co_return false;
  const std::string why = sse.overflowed()   ? overflow_reason(sse)
                          : call.failed()      ? call.error()
                          : sse.has_partial() ? std::string("cut mid-event")
                                              : std::string("ended without its terminator");
  std::string tail;
  bool complete;
  const Error cut = watch.shutdown ? shutdown_cut_error() : stream_interrupted(why);
  if (native) {
    complete = tracker.state() == StreamState::kCompleted;
    if (!complete && !relayed_error_event) tail = render_anthropic_error_event(cut);
  } else {
    if (translator.state() == StreamState::kOpen) translator.abort(cut, tail);
    complete = translator.state() == StreamState::kCompleted;
  }
  ex.finish(usage(), complete ? ExchangeEnd::kComplete : ExchangeEnd::kUpstreamBroke);
  if (!complete) {
    log::warn("request " + ctx.request_id + ": upstream stream broke: " + why);
    ctx.keep_alive = false;
  }
  std::string frame;
  if (!tail.empty()) append_http_chunk(frame, tail);
  // The ledger row is durable before the response completes. (message_stop may already
  // have reached the client: docs/policies.md, "Durability".)
  if (complete) co_await ex.commit();
  append_last_chunk(frame, ex.trailers());
  if (!co_await write_raw(stream, frame)) co_return false;
  co_return ctx.keep_alive;
}

}  // namespace

asio::awaitable<bool> handle_messages(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w) {
  ctx.headers.emplace_back("request-id", ctx.request_id);  // where Anthropic SDKs look for it
  ParserLease body_parser(w), chat_parser(w);
  simdjson::dom::element root;
  if (auto ec = body_parser.p->parse(req.body().data(), req.body().size()).get(root))
    co_return co_await send_anthropic_error(stream, body_not_json(ec), ctx);
  auto info = parse_anthropic_request(root);
  if (!info) co_return co_await send_anthropic_error(stream, info.error(), ctx);

  const auto cfg = w.server.config();
  auto targets = router::resolve_model(*cfg, info->model);
  if (!targets) co_return co_await send_anthropic_error(stream, targets.error(), ctx);

  ChatRequest chat;
  auto openai_body = anthropic_to_openai_request(root, info->model);
  if (openai_body) {
    auto parsed = parse_chat_body(*chat_parser.p, *openai_body);
    if (!parsed) co_return co_await send_anthropic_error(stream, parsed.error(), ctx);
    chat = std::move(*parsed);
  } else if (every_target_anthropic(*targets)) {
    // Nothing will translate it: the canonical form only carries what routing reads.
    chat.model = info->model;
    chat.stream = info->stream;
    chat.sampling.max_tokens = info->max_tokens;
    chat.sampling.stop = info->stop_sequences;
    chat.user = info->user_id;
    if (chat_parser.p->parse(std::string_view("{}")).get_object().get(chat.root))
      co_return co_await send_anthropic_error(stream, make_error(ErrorKind::kInternal, "empty object"), ctx);
  } else {
    co_return co_await send_anthropic_error(stream, openai_body.error(), ctx);
  }
  chat.anthropic_body = req.body();
  chat.upstream_headers = forwarded_headers(req);

  ChatExchange ex(w, ctx, req, Dialect::kAnthropic);
  auto watch = ClientWatch::make(stream, ex.control());
  ClientWatchGuard guard{*watch};
  ex.watch_client(*watch);

  auto started = co_await ex.start(chat);
  if (!started) {
    if (watch->shutdown) co_return co_await send_anthropic_error(stream, shutdown_cut_error(), ctx);
    if (started.error().kind == ErrorKind::kCancelled) co_return false;
    co_return co_await send_anthropic_error(stream, started.error(), ctx);
  }
  std::shared_ptr<backends::Call> call = std::move(*started);
  if (call->status() >= 400) {
    ex.finish({}, ExchangeEnd::kUpstreamError);
    co_return co_await send_anthropic_error(stream, ex.upstream_error(*call), ctx);
  }
  // The upstream model that answers; a cache hit has no live target, so the name asked for.
  const std::string model = ex.target().provider ? ex.target().model : info->model;
  if (chat.stream && call->header("content-type").find("text/event-stream") != std::string_view::npos) {
    watch->streaming = call;
    co_return co_await stream_messages(stream, *call, ctx, ex, *watch, model);
  }

  const int64_t t0 = mono_us();
  auto whole = co_await backends::read_whole_body(*call, ex.max_answer_bytes());
  ctx.upstream_wait_us += mono_us() - t0;
  if (watch->client_gone) co_return false;  // the exchange finishes as kClientGone
  if (!whole) {
    ex.finish({}, ExchangeEnd::kUpstreamBroke);
    co_return co_await send_anthropic_error(
        stream, watch->shutdown ? shutdown_cut_error() : ex.broken_answer(whole.error()), ctx);
  }
  std::string body = std::move(*whole);
  ex.observe(body);
  if (call->dialect() == backends::WireDialect::kAnthropic) {
    ex.finish(usage_of_message(body), ExchangeEnd::kComplete);
    co_await ex.commit();  // the ledger row is durable before the 200 goes out
    co_return co_await send_response(stream, call->status(), "application/json", std::move(body), ctx);
  }
  auto tr = openai_to_anthropic_response(body, model);
  if (!tr) {
    ex.finish({}, ExchangeEnd::kUpstreamBroke);
    co_return co_await send_anthropic_error(stream, tr.error(), ctx);
  }
  ex.finish(tr->usage, ExchangeEnd::kComplete);
  co_await ex.commit();  // the ledger row is durable before the 200 goes out
  co_return co_await send_response(stream, 200, "application/json", std::move(tr->body), ctx);
}

asio::awaitable<bool> handle_count_tokens(ClientSocket& stream, Request& req, RequestContext& ctx,
                                          Worker& w) {
  ctx.headers.emplace_back("request-id", ctx.request_id);
  ParserLease parser(w);
  simdjson::dom::element root;
  if (auto ec = parser.p->parse(req.body().data(), req.body().size()).get(root))
    co_return co_await send_anthropic_error(stream, body_not_json(ec), ctx);
  if (!root.is_object())
    co_return co_await send_anthropic_error(
        stream, make_error(ErrorKind::kInvalidRequest, "The request body must be a JSON object."), ctx);
  std::string_view model;
  simdjson::dom::element v;
  if (root["model"].get(v))
    co_return co_await send_anthropic_error(
        stream, make_error(ErrorKind::kInvalidRequest, "model: Field required", "model"), ctx);
  if (v.get_string().get(model) || model.empty())
    co_return co_await send_anthropic_error(
        stream, make_error(ErrorKind::kInvalidRequest, "model: Input should be a non-empty string", "model"), ctx);
  if (model.size() > kMaxModelNameBytes)
    co_return co_await send_anthropic_error(stream, model_name_too_long(model.size()), ctx);

  const auto cfg = w.server.config();
  auto targets = router::resolve_model(*cfg, model);
  if (!targets) co_return co_await send_anthropic_error(stream, targets.error(), ctx);
  const router::Target* target = nullptr;
  for (const auto& t : *targets)
    if (t.provider->kind == config::ProviderKind::kAnthropic) {
      target = &t;
      break;
    }
  if (!target) {
    const auto& p = *targets->front().provider;
    co_return co_await send_anthropic_error(
        stream,
        make_error(ErrorKind::kInvalidRequest,
                   "Token counting is not available for model '" + std::string(model) + "': it is served by provider '" +
                       p.name + "', which is not an Anthropic provider and has no count_tokens endpoint.",
                   "model", "count_tokens_unsupported"),
        ctx);
  }
  auto body = http::replace_model(req.body(), target->model);
  if (!body) co_return co_await send_anthropic_error(stream, body.error(), ctx);

  router::DispatchControl control;
  auto watch = ClientWatch::start(stream, control);
  ClientWatchGuard guard{*watch};
  http::HttpRequest up = http::anthropic_request(*target->provider, "/messages/count_tokens", std::move(*body),
                                                 forwarded_headers(req), false);
  up.headers.push_back(frugal_hop_header(frugal_hop_of(req).value_or(0)));
  auto call = w.client->start(std::move(up));
  watch->streaming = call;
  ctx.headers.emplace_back("x-frugal-provider", target->provider->name);
  ctx.headers.emplace_back("x-frugal-model", target->model);
  const int64_t t0 = mono_us();
  auto whole = co_await backends::read_whole_body(*call, static_cast<size_t>(target->provider->max_answer_bytes));
  ctx.upstream_wait_us += mono_us() - t0;
  if (watch->client_gone) co_return false;
  std::optional<Error> broken;
  if (!whole || !call->got_headers()) {
    broken = make_error(!whole && whole.error().kind == ErrorKind::kTimeout ? ErrorKind::kTimeout : ErrorKind::kUpstream,
                        "upstream '" + target->provider->name + "' failed: " +
                            (whole ? std::string("no response") : whole.error().message));
  } else if (call->status() >= 400) {
    // Anthropic's error, re-rendered: its text may echo the credential it was sent.
    broken = error_from_anthropic_body(call->status(), *whole);
  } else {
    broken = router::check_answer(*call, *whole, true);
  }
  if (broken) {
    config::mask_secrets(broken->message, config::config_secrets(*w.server.config()));
    co_return co_await send_anthropic_error(stream, *broken, ctx);
  }
  // Anthropic's count, relayed as it is.
  co_return co_await send_response(stream, call->status(), "application/json", std::move(*whole), ctx);
}

}  // namespace frugal::gateway
