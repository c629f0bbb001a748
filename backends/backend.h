#pragma once
// The seam between the router and whatever produces an answer: an HTTP provider
// (OpenAI-compatible, Anthropic), the in-process engine, or a replay of stored bytes
// (cache hits, buffered cascade tiers).
//
// Every Call speaks the gateway's canonical dialect, OpenAI Chat Completions:
//  - 2xx non-streaming: a `chat.completion` JSON body;
//  - 2xx streaming (content-type text/event-stream): `chat.completion.chunk` SSE events,
//    a usage-only chunk (`choices: []`) when usage is known, then `data: [DONE]`;
//  - >= 400: a complete error body, ideally OpenAI-shaped `{"error":{...}}`.
// Client dialects (OpenAI relay, Anthropic translation) render from these bytes, and
// the cache and the ledger read them, so a backend never needs to know who is asking.
// The one exception is Anthropic pass-through (see Call::dialect): an Anthropic client
// routed to an Anthropic provider gets the provider's bytes untouched.
//
// Threading: a Call belongs to the io_context of the worker that started it; every
// member is called on that thread. Backends that compute elsewhere (the engine) post
// their progress to that io_context.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/chat.h"
#include "core/dialect.h"
#include "core/usage.h"

namespace frugal::backends {

enum class CallState { kWaitingHeaders, kStreaming, kDone };

// What the one parse of a whole 2xx answer found (router::check_answer), kept with it.
struct AnswerFacts {
  static constexpr size_t kMaxFinishReasons = 16;
  bool chat_completion = false;  // the body is a chat.completion: `usage` is its usage
  Usage usage;
  std::vector<std::string> finish_reasons;  // per choice, in order (at most kMaxFinishReasons)
};


// Response header on a Call whose error the gateway produced itself (a request the
// provider's dialect cannot express, a provider kind this build cannot serve), so it
// is not reported as the upstream's answer.
inline constexpr std::string_view kGatewayErrorHeader = "x-frugal-gateway-error";

class Call {
 public:
  virtual ~Call() = default;

  // Completes when anything changed since the last wait: headers complete, body bytes
  // arrived, or the call finished. Never throws.
  virtual boost::asio::awaitable<void> wait() = 0;

  virtual CallState state() const = 0;
  virtual int status() const = 0;
  // The response has started (status and headers are final; the body may still fail).
  virtual bool got_headers() const = 0;
  // Case-insensitive response header lookup; empty if absent.
  virtual std::string_view header(std::string_view name) const = 0;
  // Moves out the body bytes produced so far.
  virtual std::string take_body() = 0;
  // Bytes produced and not yet taken.
  virtual const std::string& body() const = 0;

  bool failed() const { return state() == CallState::kDone && !error().empty(); }
  virtual bool timed_out() const = 0;
  virtual bool cancelled() const = 0;
  virtual const std::string& error() const = 0;  // empty on success

  // Stops the work now; wait() completes.
  virtual void cancel() = 0;

  virtual int64_t started_us() const = 0;
  virtual int64_t headers_us() const = 0;  // 0 until headers

  // The dialect of the call's bytes: kOpenAi (canonical) except for the pass-through of an
  // Anthropic client's request to an Anthropic provider (ChatRequest::anthropic_body),
  // whose bytes are the provider's own Messages API response, relayed unchanged.
  virtual Dialect dialect() const { return Dialect::kOpenAi; }

  // Usage the backend knows of that its bytes cannot carry yet: a translated Anthropic
  // stream reports input and cache tokens in message_start, the canonical stream only
  // in its final usage chunk. A codec whose answer ends early (client gone, stream cut)
  // hands this to ChatExchange::finish when the bytes gave it none.
  virtual Usage usage_so_far() const { return {}; }
  // A whole answer's facts, when a dispatch read and checked it (backends/whole_body.h);
  // nullptr otherwise.
  virtual const AnswerFacts* answer_facts() const { return nullptr; }
};

// One configured provider on one worker thread.
class Backend {
 public:
  virtual ~Backend() = default;
  // Starts a generation of `req` with the provider's model name `model`.
  virtual std::shared_ptr<Call> start(const ChatRequest& req, std::string_view model) = 0;
};

}  // namespace frugal::backends
