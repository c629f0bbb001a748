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
#include "core/sse_writer.h"
#include "core/usage.h"
#include "core/log.h"
#include "gateway/server.h"
#include "gateway/worker.h"
#include "gateway/chat_codec.h"
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

// The OpenAI chat-completions rendering: upstream bytes are already canonical (OpenAI).
class OpenAiCodec final : public ChatCodec {
 public:
  explicit OpenAiCodec(const ChatRequest& chat) : chat_(chat) {}

  asio::awaitable<bool> send_error(ClientSocket& stream, const Error& e, RequestContext& ctx) override {
    co_return co_await send_openai_error(stream, e, ctx);
  }

  void begin_stream(const ChatExchange&, backends::Call&) override {}
  void on_event(const SseEvent& ev, std::string& out) override {
    if (ev.data == "[DONE]") {
      saw_done_ = true;  // held back until the ledger row is written (stream_tail)
      return;
    }
    if (inspect_chunk(ev.data, usage_) && !chat_.include_usage) return;  // usage-only chunk not asked for
    out.append(ev.raw);
  }
  // The usage chunk if one came, else what the backend saw but could not put into bytes
  // yet (e.g. Anthropic's message_start).
  Usage stream_usage(backends::Call& call) const override { return usage_.reported ? usage_ : call.usage_so_far(); }
  bool stream_complete(const backends::Call& call, const SseParser& sse) const override {
    return saw_done_ && !call.failed() && !sse.has_partial();
  }
  std::string stream_tail(bool complete, const Error& cut) override {
    return complete ? std::string(kSseDone) : render_openai_error_event(cut);
  }

  Result<Rendered> render_body(const ChatExchange&, backends::Call& call, std::string body) override {
    const std::string_view ctype = call.header("content-type");
    Rendered r;
    r.status = call.status();
    r.content_type = ctype.empty() ? std::string_view("application/json") : ctype;
    const backends::AnswerFacts* facts = call.answer_facts();  // parsed once, by the dispatch
    r.usage = facts ? facts->usage : usage_of_openai_body(body);
    r.body = std::move(body);
    return r;
  }

 private:
  const ChatRequest& chat_;
  Usage usage_;
  bool saw_done_ = false;
};

}  // namespace

asio::awaitable<bool> handle_chat_completions(ClientSocket& stream, Request& req, RequestContext& ctx,
                                              Worker& w) {
  ParserLease parser(w);
  auto chat = parse_chat_body(*parser.p, req.body());
  if (!chat) co_return co_await send_openai_error(stream, chat.error(), ctx);
  ChatExchange ex(w, ctx, req, Dialect::kOpenAi);
  OpenAiCodec codec(*chat);
  co_return co_await serve_chat(stream, ctx, ex, codec, *chat);
}

}  // namespace frugal::gateway
