// POST /v1/responses: the OpenAI Responses API, a third codec over ChatExchange.
//
// The request is translated once, at parse time, into the canonical chat-completions
// form (responses_to_chat_request) and then runs exactly like a chat request: the
// policy classifies and routes it, the exact cache keys it, the cascade tries its
// tiers, and every provider kind (OpenAI-compatible, Anthropic via its translation,
// the local engine) answers in the canonical dialect. This codec only renders that
// answer as a Response object or the Responses event sequence, and errors in OpenAI's
// shape. There is no pass-through to an upstream's own /v1/responses: one code path
// for every provider keeps caching, cascades and scoring on the same canonical events
// (docs/dialects.md).
#include <chrono>
#include <optional>
#include <string>

#include "backends/dialect/responses_api.h"
#include "core/chat.h"
#include "gateway/chat_codec.h"
#include "gateway/chat_exchange.h"
#include "gateway/server.h"
#include "gateway/worker.h"

namespace frugal::gateway {

namespace {

class ResponsesCodec final : public ChatCodec {
 public:
  ResponsesCodec(std::string requested_model, std::string id, const ResponsesEcho& echo)
      : requested_model_(std::move(requested_model)), id_(std::move(id)), echo_(echo) {}

  asio::awaitable<bool> send_error(ClientSocket& stream, const Error& e, RequestContext& ctx) override {
    co_return co_await send_openai_error(stream, e, ctx);
  }

  void begin_stream(const ChatExchange& ex, backends::Call&) override { translator_.emplace(frame(ex)); }
  void on_event(const SseEvent& ev, std::string& out) override {
    (void)translator_->feed(ev, out);  // a failure has written its error event
  }
  Usage stream_usage(backends::Call& call) const override {
    const Usage u = translator_->current_usage();
    return u.reported ? u : call.usage_so_far();
  }
  bool stream_complete(const backends::Call& call, const SseParser& sse) const override {
    return translator_->saw_done() && translator_->state() == StreamState::kOpen && !call.failed() &&
           !sse.has_partial();
  }
  // response.completed goes out only now, after the ledger row is durable.
  std::string stream_tail(bool complete, const Error& cut) override {
    std::string tail;
    if (complete) translator_->complete(tail); else translator_->abort(cut, tail);
    return tail;
  }

  Result<Rendered> render_body(const ChatExchange& ex, backends::Call&, std::string body) override {
    auto tr = chat_to_responses_body(body, frame(ex));
    if (!tr) return std::move(tr).error();
    Rendered r;
    r.content_type = "application/json";
    r.usage = tr->usage;
    r.body = std::move(tr->body);
    return r;
  }

 private:
  ResponsesFrame frame(const ChatExchange& ex) const {
    ResponsesFrame f;
    f.id = id_;
    f.created_at = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
    // The upstream model that answers; a cache hit has none, so the name asked for.
    f.model = ex.answer_upstream_model().empty() ? requested_model_ : ex.answer_upstream_model();
    f.echo = &echo_;
    return f;
  }
  std::string requested_model_;
  std::string id_;
  const ResponsesEcho& echo_;
  std::optional<ChatToResponsesStream> translator_;
};

}  // namespace

asio::awaitable<bool> handle_responses(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w) {
  ParserLease body_parser(w), chat_parser(w);
  simdjson::dom::element root;
  if (auto ec = body_parser.p->parse(req.body().data(), req.body().size()).get(root))
    co_return co_await send_openai_error(
        stream,
        make_error(ErrorKind::kInvalidRequest,
                   std::string("We could not parse the JSON body of your request: ") + simdjson::error_message(ec) + "."),
        ctx);
  auto translated = responses_to_chat_request(root);
  if (!translated) co_return co_await send_openai_error(stream, translated.error(), ctx);
  // chat.openai_body views translated->chat_body, which lives until the exchange is over.
  auto chat = parse_chat_body(*chat_parser.p, translated->chat_body);
  if (!chat) co_return co_await send_openai_error(stream, chat.error(), ctx);
  chat->client_metadata = translated->metadata;  // for policy matchers; not sent upstream

  ChatExchange ex(w, ctx, req, Dialect::kResponses);
  std::string id = ctx.request_id;
  if (id.rfind("frg-", 0) == 0) id.erase(0, 4);
  ResponsesCodec codec(translated->model, "resp_" + id, translated->echo);
  co_return co_await serve_chat(stream, ctx, ex, codec, *chat);
}

}  // namespace frugal::gateway
