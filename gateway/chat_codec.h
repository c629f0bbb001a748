#pragma once
// The sequence every chat request runs, whatever the client's API: start the exchange,
// then relay the answer — a stream event by event, or a whole body — finish, wait for
// the ledger row, and end the response (a stream's trailers carry the final cost). A
// codec (OpenAI chat completions, Anthropic messages) only renders: errors in its API's
// shape, each upstream event as the client's events, a whole answer as its body.
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/chat.h"
#include "core/error.h"
#include "core/sse.h"
#include "core/usage.h"
#include "gateway/chat_exchange.h"
#include "gateway/client_watch.h"
#include "gateway/worker.h"

namespace frugal::gateway {

class ChatCodec {
 public:
  virtual ~ChatCodec() = default;

  virtual asio::awaitable<bool> send_error(ClientSocket& stream, const Error& e, RequestContext& ctx) = 0;

  // --- a streamed answer ---
  // Once, before the first event: the call that answers.
  virtual void begin_stream(const ChatExchange& ex, backends::Call& call) = 0;
  // Appends the client's bytes for one upstream event (secrets masked by the caller).
  virtual void on_event(const SseEvent& ev, std::string& out) = 0;
  // The usage seen so far (partial for a cut stream).
  virtual Usage stream_usage(backends::Call& call) const = 0;
  // Whether the upstream's stream reached its proper end.
  virtual bool stream_complete(const backends::Call& call, const SseParser& sse) const = 0;
  // What ends the client's stream before the last chunk: for a complete stream (after
  // its ledger row is durable), or an error event saying `cut` for a broken one.
  virtual std::string stream_tail(bool complete, const Error& cut) = 0;

  // --- a whole answer ---
  struct Rendered {
    int status = 200;
    std::string_view content_type;  // a literal or the call's header (it outlives the write)
    std::string body;
    Usage usage;
  };
  // The client's body for the upstream's whole answer; an error ends the exchange as a
  // broken answer.
  virtual Result<Rendered> render_body(const ChatExchange& ex, backends::Call& call, std::string body) = 0;
};

// Runs `req` through `ex` and writes the response. Returns whether the connection can
// be kept alive.
asio::awaitable<bool> serve_chat(ClientSocket& stream, RequestContext& ctx, ChatExchange& ex, ChatCodec& codec,
                                 ChatRequest& req,
                                 std::optional<std::vector<router::Target>> requested = std::nullopt);

}  // namespace frugal::gateway
