#pragma once
// A Call over bytes already in hand: a cache hit, or a cascade tier that was buffered
// while it was scored. It is complete from the start; the renderer takes the body in
// one piece.
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"

namespace frugal::backends {

class ReplayCall final : public Call {
 public:
  // `content_type` text/event-stream means `body` is canonical SSE events.
  ReplayCall(int status, std::string content_type, std::string body,
             std::vector<std::pair<std::string, std::string>> headers = {});

  boost::asio::awaitable<void> wait() override;
  CallState state() const override { return CallState::kDone; }
  int status() const override { return status_; }
  bool got_headers() const override { return true; }
  std::string_view header(std::string_view name) const override;
  std::string take_body() override { return std::exchange(body_, {}); }
  const std::string& body() const override { return body_; }
  bool timed_out() const override { return false; }
  bool cancelled() const override { return false; }
  const std::string& error() const override { return error_; }
  void cancel() override {}
  int64_t started_us() const override { return started_us_; }
  int64_t headers_us() const override { return started_us_; }
  const AnswerFacts* answer_facts() const override { return facts_.chat_completion ? &facts_ : nullptr; }
  // What the dispatch read from these bytes (a cascade tier's answer), so the renderer
  // does not read them again; stripping log-probs changes none of it.
  void set_answer_facts(AnswerFacts facts) { facts_ = std::move(facts); }

 private:
  int status_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string body_;
  std::string error_;
  int64_t started_us_;
  AnswerFacts facts_;
};

}  // namespace frugal::backends
