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
//   Dialect::kAnthropic — relayed as they are, AnthropicUsageTracker watching usage;
//   Dialect::kOpenAi    — rendered with OpenAiToAnthropicStream /
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
#include "gateway/chat_codec.h"
#include "gateway/chat_exchange.h"
#include "gateway/client_watch.h"
#include "gateway/find_header.h"
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
    const auto it = find_header(req, name);
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

// The Messages API rendering: the provider's events and body as they are (pass-through,
// AnthropicUsageTracker watching usage), or the canonical answer translated. A broken
// stream ends with an `error` event (never a clean message_stop).
class AnthropicCodec final : public ChatCodec {
 public:
  explicit AnthropicCodec(std::string requested_model) : requested_model_(std::move(requested_model)) {}

  asio::awaitable<bool> send_error(ClientSocket& stream, const Error& e, RequestContext& ctx) override {
    co_return co_await send_anthropic_error(stream, e, ctx);
  }

  void begin_stream(const ChatExchange& ex, backends::Call& call) override {
    native_ = call.dialect() == Dialect::kAnthropic;
    translator_.emplace(OpenAiToAnthropicStream::Options{answer_model(ex), "", 0});
  }
  void on_event(const SseEvent& ev, std::string& out) override {
    if (native_) {
      if (ev.event == "error") relayed_error_event_ = true;
      tracker_.observe(ev);
      out.append(ev.raw);
    } else {
      (void)translator_->feed(ev, out);  // a failure has written its error event
    }
  }
  Usage stream_usage(backends::Call& call) const override {
    if (native_) return tracker_.current_usage();
    const Usage u = translator_->current_usage();
    return u.reported ? u : call.usage_so_far();
  }
  bool stream_complete(const backends::Call&, const SseParser&) const override {
    return native_ ? tracker_.state() == StreamState::kCompleted : translator_->state() == StreamState::kCompleted;
  }
  std::string stream_tail(bool complete, const Error& cut) override {
    std::string tail;
    if (complete) return tail;
    if (native_) {
      if (!relayed_error_event_) tail = render_anthropic_error_event(cut);
    } else if (translator_->state() == StreamState::kOpen) {
      translator_->abort(cut, tail);
    }
    return tail;
  }

  Result<Rendered> render_body(const ChatExchange& ex, backends::Call& call, std::string body) override {
    Rendered r;
    r.content_type = "application/json";
    if (call.dialect() == Dialect::kAnthropic) {
      r.status = call.status();
      r.usage = usage_of_message(body);
      r.body = std::move(body);
      return r;
    }
    auto tr = openai_to_anthropic_response(body, answer_model(ex));
    if (!tr) return std::move(tr).error();
    r.usage = tr->usage;
    r.body = std::move(tr->body);
    return r;
  }

 private:
  // The upstream model that answers; a cache hit has none, so the name asked for.
  std::string answer_model(const ChatExchange& ex) const {
    return ex.answer_upstream_model().empty() ? requested_model_ : ex.answer_upstream_model();
  }
  std::string requested_model_;
  bool native_ = false;
  bool relayed_error_event_ = false;
  AnthropicUsageTracker tracker_;
  std::optional<OpenAiToAnthropicStream> translator_;
};

}  // namespace

asio::awaitable<bool> handle_messages(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w) {
  ctx.headers.emplace_back("request-id", ctx.request_id);  // where Anthropic SDKs look for it
  ParserLease body_parser(w), chat_parser(w);
  simdjson::dom::element root;
  if (auto ec = body_parser.p->parse(req.body().data(), req.body().size()).get(root))
    co_return co_await send_anthropic_error(stream, body_not_json(ec), ctx);
  auto info = parse_anthropic_request(root);
  if (!info) co_return co_await send_anthropic_error(stream, info.error(), ctx);

  ChatExchange ex(w, ctx, req, Dialect::kAnthropic);
  // Resolved once, with the exchange's configuration: the exchange does not resolve them again.
  auto targets = router::resolve_model(ex.config(), info->model);
  if (!targets) {
    ex.refused(targets.error());  // counted like the OpenAI API's unknown model
    co_return co_await send_anthropic_error(stream, targets.error(), ctx);
  }

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

  AnthropicCodec codec(info->model);
  co_return co_await serve_chat(stream, ctx, ex, codec, chat, std::move(*targets));
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
