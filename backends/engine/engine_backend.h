#pragma once
// The in-process engine as a backends::Backend: one EngineBackend per gateway worker
// and engine provider, all sharing one EngineService (model, tokenizer, Engine).
//
// A Call speaks canonical OpenAI bytes like an HTTP provider's:
//  - a request the engine cannot serve (tools, images, n > 1, too long, unknown model)
//    completes at once with status 400/404 and an OpenAI error body;
//  - streaming: status 200 + text/event-stream as soon as the first token (or the end)
//    is known, then one chunk per text piece, a finish chunk, a usage-only chunk and
//    `data: [DONE]`; an engine failure after the first byte leaves failed() set and no
//    [DONE], so the gateway reports a broken stream rather than a clean finish;
//  - non-streaming: status and complete body when generation ends (an engine error
//    before then is its HTTP status, e.g. 503 when the KV cache is full).
// Usage: prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens (prompt
// tokens whose KV came from the prefix cache).
//
// Deadlines (the provider's `timeouts`): `first_token_ms` from the start of the call to
// the first generated token (queueing and prefill included), `total_ms` to the end; 0
// turns one off. On expiry the engine request is cancelled (its KV blocks are freed
// before the engine's next step) and the call ends with timed_out() set: before the
// first byte as a failure without headers, like an HTTP provider's timeout (the gateway
// answers 504); mid-stream with failed() set and no [DONE].
//
// Threading: a Call and its members belong to the worker's io_context thread. The
// engine thread never touches the Call: it appends events to a mutex-guarded inbox and
// posts one drain to the io_context when the inbox goes non-empty, so a slow client
// never stalls the engine batch. cancel() (and destroying the Call) cancels the engine
// request, whose KV blocks are freed before the engine's next step.
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "backends/backend.h"
#include "backends/engine/service.h"

namespace frugal::engine {

struct CallDeadlines {
  int64_t first_token_ms = 0;  // 0: none
  int64_t total_ms = 0;        // 0: none
};

class EngineBackend final : public backends::Backend {
 public:
  // `io` must outlive every Call started here; `service` is shared across workers.
  // `served_name` is the `model` responses carry (the gateway's public name, e.g.
  // "local/llama-2-tiny-random"); empty: the service's model_name().
  EngineBackend(std::shared_ptr<EngineService> service, boost::asio::io_context& io, std::string served_name = {},
                CallDeadlines deadlines = {})
      : service_(std::move(service)), io_(io),
        served_name_(served_name.empty() ? service_->model_name() : std::move(served_name)),
        deadlines_(deadlines) {}

  // `model` must be the service's model_name(); otherwise the call is a 404.
  std::shared_ptr<backends::Call> start(const ChatRequest& req, std::string_view model) override;

  EngineService& service() { return *service_; }

 private:
  std::shared_ptr<EngineService> service_;
  boost::asio::io_context& io_;
  std::string served_name_;
  CallDeadlines deadlines_;
};

}  // namespace frugal::engine
