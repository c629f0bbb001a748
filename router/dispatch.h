#pragma once
// Resolving a public model name to upstream targets, and getting a response started
// from one of them: retries (429, 5xx, connection errors, timeouts) with exponential
// backoff and full jitter honouring Retry-After, then the alias's fallback targets.
// Everything here happens before the first byte reaches the client; once a call is
// returned its bytes are the client's and nothing is retried. So every answer but a
// stream is read whole (bounded by the provider's max_answer) and checked here: a body
// that breaks off, stalls (the body idle timeout) or is no answer (check_answer) is a
// failed attempt like a connection error.
//
// Threading: a dispatch runs on the calling coroutine's io_context (the one the
// backends' calls belong to).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "config/config.h"
#include "core/chat.h"
#include "core/error.h"
#include "router/tier_answer.h"
#include "router/request_trace.h"  // AttemptRecord

namespace frugal::router {

struct Target {
  const config::ProviderConfig* provider = nullptr;
  std::string model;  // upstream model name
};

// Alias → its targets in order; otherwise "<p>/<model>" where p is a `kind: engine`
// provider → that engine; otherwise the first matching passthrough rule with the model
// name unchanged; otherwise kNotFound ("model_not_found").
Result<std::vector<Target>> resolve_model(const config::GatewayConfig& cfg, std::string_view model);
// The alias named `model`, if any.
const config::ModelAlias* find_alias(const config::GatewayConfig& cfg, std::string_view model);

// The backends of one worker thread, by provider.
class Backends {
 public:
  virtual ~Backends() = default;
  virtual backends::Backend& backend(const config::ProviderConfig& provider) = 0;
  virtual boost::asio::io_context& io_context() = 0;
};

// Cancels an in-flight dispatch from outside (e.g. the client disconnected).
class DispatchControl {
 public:
  void cancel();
  bool cancelled() const { return cancelled_; }
  // Makes cancel() also cancel `call` (a cascade tier being buffered after dispatch
  // returned it); pass nullptr when done. Cancels it at once if already cancelled.
  void track(std::shared_ptr<backends::Call> call);
  // A timer that cancel() cancels too (e.g. waiting on another request's answer).
  void set_waiter(boost::asio::steady_timer* t) { waiter_ = t; }

 private:
  friend struct DispatchRun;
  bool cancelled_ = false;
  std::shared_ptr<backends::Call> current_;
  boost::asio::steady_timer* backoff_ = nullptr;
  boost::asio::steady_timer* waiter_ = nullptr;
};

struct DispatchResult {
  // A call whose headers have arrived: a 2xx stream (its bytes follow), a 2xx answer
  // read whole and checked, or a final upstream error whose body is complete. Null when
  // `error` is set.
  std::shared_ptr<backends::Call> call;
  std::optional<Error> error;
  Target target;  // the target that produced `call`
  std::vector<AttemptRecord> attempts;
  int64_t upstream_wait_us = 0;  // time spent waiting on upstreams and backoff
  // With `want_answer` (a cascade scores what it buffers), a non-stream 2xx `call`'s
  // body as a TierAnswer, read from the parse that checked it (an error when it is not a
  // usable chat.completion).
  std::optional<Result<TierAnswer>> answer;
};

boost::asio::awaitable<DispatchResult> dispatch_chat(Backends& backends,
                                                     const std::vector<Target>& targets,
                                                     const ChatRequest& req,
                                                     DispatchControl& control,
                                                     bool want_answer = false);

bool is_retriable_status(int status);

// Whether `call` answers `req` with a stream the client gets as it arrives (a streamed
// request and a 2xx text/event-stream); anything else is read whole before it is handed
// out (so a non-streamed answer is complete and checked before the client sees a byte).
bool is_stream_answer(const ChatRequest& req, const backends::Call& call);
// Why a response cannot be handed to a client, if it cannot: a status that carries no
// answer (1xx, 204, 205, 3xx), a body still content-encoded, or, for a 2xx read whole
// (`body`), one that is an event stream or not a JSON object. A stream is checked by
// its relay (`whole` false: only the status and encoding are checked).
// A 2xx chat.completion read whole is parsed here once: its facts go to `facts` when
// given (the answer's usage and finish reasons) and, for a cascade's scorer, the whole
// answer to `answer`, so no later stage parses it again.
std::optional<Error> check_answer(const backends::Call& call, std::string_view body, bool whole,
                                  backends::AnswerFacts* facts = nullptr,
                                  std::optional<Result<TierAnswer>>* answer = nullptr);
// Full-jitter exponential backoff for attempt n (0-based), in ms.
int64_t backoff_delay_ms(int attempt, int64_t base_ms, int64_t max_ms, double unit_random);

}  // namespace frugal::router
