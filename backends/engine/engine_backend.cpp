#include "backends/engine/engine_backend.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "backends/engine/embeddings_call.h"
#include "backends/engine/openai_output.h"
#include "core/ids.h"
#include "core/sse_writer.h"

namespace frugal::engine {
namespace {

namespace asio = boost::asio;
using backends::CallState;

class EngineCall;

// The hand-off between the engine thread (producer) and the call's io_context thread.
struct Inbox : std::enable_shared_from_this<Inbox> {
  std::mutex mu;
  asio::io_context* io = nullptr;     // guarded by mu; null once the call stopped listening
  std::vector<GenerateEvent> events;  // guarded by mu
  bool drain_posted = false;          // guarded by mu
  std::weak_ptr<EngineCall> call;     // read on the io thread only

  // Engine thread.
  void push(const GenerateEvent& ev);
  // io thread: no event is delivered after this returns.
  void detach() {
    std::lock_guard lock(mu);
    io = nullptr;
    events.clear();
  }
  void drain();
};

class EngineCall final : public backends::Call, public std::enable_shared_from_this<EngineCall> {
 public:
  EngineCall(asio::io_context& io, std::shared_ptr<EngineService> service, std::string model)
      : io_(io),
        signal_(io),
        deadline_(io),
        service_(std::move(service)),
        writer_("chatcmpl-" + new_request_id().substr(4), wall_us() / 1'000'000, std::move(model),
                service_->text()),
        started_us_(mono_us()) {}

  ~EngineCall() override {
    if (inbox_) inbox_->detach();
    if (state_ != CallState::kDone) handle_.cancel();
  }

  // Completes the call with an error response before anything was submitted.
  void fail_now(const Error& e) { respond_error(e); }

  void submit(PreparedChat prep, CallDeadlines deadlines) {
    stream_ = prep.stream;
    logprobs_ = prep.logprobs;
    limits_ = deadlines;
    const auto now = Clock::now();
    if (deadlines.first_token_ms > 0) first_token_at_ = now + std::chrono::milliseconds(deadlines.first_token_ms);
    if (deadlines.total_ms > 0) total_at_ = now + std::chrono::milliseconds(deadlines.total_ms);
    inbox_ = std::make_shared<Inbox>();
    inbox_->io = &io_;
    inbox_->call = weak_from_this();
    handle_ = service_->engine().submit(std::move(prep.gen),
                                        [inbox = inbox_](const GenerateEvent& ev) { inbox->push(ev); });
    arm_deadline();
  }

  void on_events(std::vector<GenerateEvent>& events) {
    for (GenerateEvent& ev : events) {
      if (state_ == CallState::kDone) break;
      if (ev.is_final) on_final(ev.final);
      else on_token(ev.token);
    }
    notify();
  }

  asio::awaitable<void> wait() override {
    if (!pending_ && state_ != CallState::kDone) {
      signal_.expires_at(asio::steady_timer::time_point::max());
      co_await signal_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    pending_ = false;
  }

  CallState state() const override { return state_; }
  int status() const override { return status_; }
  bool got_headers() const override { return got_headers_; }
  std::string_view header(std::string_view name) const override {
    constexpr std::string_view kContentType = "content-type";
    if (name.size() != kContentType.size()) return {};
    for (size_t i = 0; i < name.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(name[i])) != kContentType[i]) return {};
    return content_type_;
  }
  std::string take_body() override { return std::exchange(body_, std::string()); }
  const std::string& body() const override { return body_; }
  bool timed_out() const override { return timed_out_; }
  bool cancelled() const override { return cancelled_; }
  const std::string& error() const override { return error_; }

  void cancel() override {
    if (state_ == CallState::kDone) return;
    handle_.cancel();
    if (inbox_) inbox_->detach();
    deadline_.cancel();
    cancelled_ = true;
    error_ = "cancelled";
    state_ = CallState::kDone;
    notify();
  }

  int64_t started_us() const override { return started_us_; }
  int64_t headers_us() const override { return headers_us_; }

 private:
  using Clock = asio::steady_timer::clock_type;

  // Waits for the nearest deadline still pending: the first-token one until a token
  // arrived, and the total one.
  void arm_deadline() {
    const Clock::time_point at = first_token_ ? total_at_ : std::min(first_token_at_, total_at_);
    if (at == Clock::time_point::max()) return;
    deadline_.expires_at(at);
    deadline_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->on_deadline();
    });
  }

  void on_deadline() {
    if (state_ == CallState::kDone) return;
    const auto now = Clock::now();
    std::string what;
    if (now >= total_at_) {
      what = "generation exceeded the total timeout (" + std::to_string(limits_.total_ms) + " ms)";
    } else if (!first_token_ && now >= first_token_at_) {
      what = "no token within the first-byte timeout (" + std::to_string(limits_.first_token_ms) +
             " ms, queueing and prefill included)";
    } else {
      arm_deadline();  // the first token came in time: the total deadline remains
      return;
    }
    // The engine frees the request's KV blocks before its next step; no event of it is
    // delivered to this call any more.
    handle_.cancel();
    timed_out_ = true;
    error_ = "engine: " + what;
    // Before the first byte the call ends without headers, as an HTTP provider's timeout
    // does (the gateway answers 504); mid-stream failed() is set and no [DONE] follows.
    finish();
  }

  void notify() {
    pending_ = true;
    signal_.cancel();
  }

  void headers(int status, std::string_view content_type) {
    got_headers_ = true;
    status_ = status;
    content_type_ = content_type;
    headers_us_ = mono_us();
  }

  void respond_error(const Error& e) {
    headers(e.http_status(), "application/json");
    body_ = OpenAiWriter::error_body(e);
    finish();
  }

  void finish() {
    state_ = CallState::kDone;
    if (inbox_) inbox_->detach();
    deadline_.cancel();
    notify();
  }

  void start_stream() {
    headers(200, "text/event-stream");
    state_ = CallState::kStreaming;
    body_ += writer_.role_event();
  }

  void on_token(const TokenEvent& t) {
    first_token_ = true;
    if (logprobs_) records_.push_back({t.token, t.logprob, t.top_logprobs});
    const std::string text = sanitize_utf8(t.text);
    if (!stream_) {
      content_ += text;
      return;
    }
    if (!got_headers_) start_stream();
    // Tokens whose text is still held back (a partial character, a possible stop
    // string) carry their log-probs over to the next chunk that has text.
    if (text.empty()) return;
    body_ += writer_.content_event(text, records_, logprobs_);
    records_.clear();
  }

  void on_final(const FinalEvent& f) {
    if (f.reason == FinishReason::kCancelled) {
      cancelled_ = true;
      error_ = "cancelled";
      finish();
      return;
    }
    if (f.reason == FinishReason::kError) {
      const Error e = f.error ? *f.error : make_error(ErrorKind::kInternal, "engine failure");
      if (got_headers_) {
        error_ = "engine: " + e.message;  // mid-stream: no [DONE], the gateway reports the cut
        finish();
      } else {
        respond_error(e);
      }
      return;
    }
    const std::string text = sanitize_utf8(f.text);
    const char* reason = finish_reason_name(f.reason);
    if (stream_) {
      if (!got_headers_) start_stream();
      if (!text.empty() || !records_.empty()) body_ += writer_.content_event(text, records_, logprobs_);
      body_ += writer_.finish_event(reason);
      body_ += writer_.usage_event(f.usage, f.confidence);
      append_sse_done(body_);
    } else {
      content_ += text;
      headers(200, "application/json");
      body_ = writer_.completion_body(content_, records_, logprobs_, reason, f.usage, f.confidence);
    }
    records_.clear();
    finish();
  }

  asio::io_context& io_;
  asio::steady_timer signal_;
  bool pending_ = false;
  asio::steady_timer deadline_;
  CallDeadlines limits_;
  Clock::time_point first_token_at_ = Clock::time_point::max();
  Clock::time_point total_at_ = Clock::time_point::max();
  bool first_token_ = false;
  bool timed_out_ = false;
  std::shared_ptr<EngineService> service_;
  std::shared_ptr<Inbox> inbox_;
  Engine::Handle handle_;
  OpenAiWriter writer_;
  bool stream_ = false;
  bool logprobs_ = false;
  std::string content_;                 // non-streaming: the whole answer so far
  std::vector<LogprobRecord> records_;  // log-probs not yet rendered

  CallState state_ = CallState::kWaitingHeaders;
  int status_ = 0;
  bool got_headers_ = false;
  std::string content_type_;
  std::string body_;
  bool cancelled_ = false;
  std::string error_;
  int64_t started_us_ = 0;
  int64_t headers_us_ = 0;
};

void Inbox::push(const GenerateEvent& ev) {
  std::lock_guard lock(mu);
  if (io == nullptr) return;
  events.push_back(ev);
  if (drain_posted) return;
  drain_posted = true;
  asio::post(*io, [self = shared_from_this()] { self->drain(); });
}

void Inbox::drain() {
  std::vector<GenerateEvent> batch;
  {
    std::lock_guard lock(mu);
    batch.swap(events);
    drain_posted = false;
  }
  if (batch.empty()) return;
  if (auto c = call.lock()) c->on_events(batch);
}

}  // namespace

std::shared_ptr<backends::Call> EngineBackend::start(const ChatRequest& req, std::string_view model) {
  auto call = std::make_shared<EngineCall>(io_, service_, served_name_);
  if (model != service_->model_name()) {
    call->fail_now(make_error(ErrorKind::kNotFound,
                              "The model '" + std::string(model) + "' does not exist: this engine serves '" +
                                  service_->model_name() + "'.",
                              "model", "model_not_found"));
    return call;
  }
  if (req.embeddings) return start_engine_embeddings(io_, service_, served_name_, *req.embeddings, deadlines_.total_ms);
  auto prep = service_->prepare(req);
  if (!prep) {
    call->fail_now(prep.error());
    return call;
  }
  call->submit(std::move(prep).value(), deadlines_);
  return call;
}

}  // namespace frugal::engine
