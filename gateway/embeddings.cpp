// POST /v1/embeddings: the OpenAI Embeddings API. The request runs the chat exchange's
// sequence (serve_chat): identity, classification and budget, the requested model's
// targets (aliases, fallbacks, retries), the exact cache, the ledger row and telemetry.
// It never takes a policy route (gateway/routing.cpp) and never streams. Backends:
// OpenAI-compatible providers get the body at {base}/embeddings, the local engine
// computes the vectors (backends/engine/embeddings.h), Anthropic providers refuse (400).
#include "core/embeddings.h"

#include "backends/dialect/errors.h"
#include "core/usage.h"
#include "gateway/chat_codec.h"
#include "gateway/chat_exchange.h"
#include "gateway/server.h"
#include "gateway/worker.h"

namespace frugal::gateway {

namespace {

// The answer is a whole OpenAI body already (an upstream's, the engine's or a stored one).
class EmbeddingsCodec final : public ChatCodec {
 public:
  asio::awaitable<bool> send_error(ClientSocket& stream, const Error& e,
                                   RequestContext& ctx) override {
    co_return co_await send_openai_error(stream, e, ctx);
  }

  // Never streamed: the request has no `stream`, so serve_chat reads every answer whole.
  void begin_stream(const ChatExchange&, backends::Call&) override {}
  void on_event(const SseEvent&, std::string&) override {}
  Usage stream_usage(backends::Call& call) const override { return call.usage_so_far(); }
  bool stream_complete(const backends::Call&, const SseParser&) const override { return false; }
  std::string stream_tail(bool, const Error& cut) override {
    return render_openai_error_event(cut);
  }

  Result<Rendered> render_body(const ChatExchange&, backends::Call& call,
                               std::string body) override {
    const std::string_view ctype = call.header("content-type");
    Rendered r;
    r.status = call.status();
    r.content_type = ctype.empty() ? std::string_view("application/json") : ctype;
    r.usage = usage_of_openai_body(body);  // prompt_tokens; an embedding has no output tokens
    r.usage.output_tokens = 0;
    r.body = std::move(body);
    return r;
  }
};

}  // namespace

asio::awaitable<bool> handle_embeddings(ClientSocket& stream, Request& req, RequestContext& ctx,
                                        Worker& w) {
  ParserLease parser(w);
  auto emb = parse_embeddings_body(*parser.p, req.body());
  if (!emb) co_return co_await send_openai_error(stream, emb.error(), ctx);
  ChatExchange ex(w, ctx, req, Dialect::kOpenAi);
  EmbeddingsCodec codec;
  co_return co_await serve_chat(stream, ctx, ex, codec, *emb);
}

}  // namespace frugal::gateway
