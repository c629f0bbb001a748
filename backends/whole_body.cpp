#include "backends/whole_body.h"

#include <utility>

namespace frugal::backends {

namespace {

class WholeBodyCall final : public Call {
 public:
  WholeBodyCall(std::shared_ptr<Call> inner, std::string body, AnswerFacts facts)
      : inner_(std::move(inner)), body_(std::move(body)), facts_(std::move(facts)) {}

  boost::asio::awaitable<void> wait() override { co_return; }
  CallState state() const override { return CallState::kDone; }
  int status() const override { return inner_->status(); }
  bool got_headers() const override { return true; }
  std::string_view header(std::string_view name) const override { return inner_->header(name); }
  std::string take_body() override { return std::exchange(body_, {}); }
  const std::string& body() const override { return body_; }
  bool timed_out() const override { return false; }
  bool cancelled() const override { return false; }
  const std::string& error() const override { return error_; }
  void cancel() override {}
  int64_t started_us() const override { return inner_->started_us(); }
  int64_t headers_us() const override { return inner_->headers_us(); }
  Dialect dialect() const override { return inner_->dialect(); }
  Usage usage_so_far() const override { return inner_->usage_so_far(); }
  const AnswerFacts* answer_facts() const override { return facts_.chat_completion ? &facts_ : nullptr; }

 private:
  std::shared_ptr<Call> inner_;
  std::string body_;
  AnswerFacts facts_;
  std::string error_;
};

}  // namespace

boost::asio::awaitable<Result<std::string>> read_whole_body(Call& call, size_t max_bytes) {
  std::string out;
  for (;;) {
    if (!call.body().empty()) {
      if (out.empty()) out = call.take_body();
      else out += call.take_body();
      if (out.size() > max_bytes) {
        call.cancel();
        co_return make_error(ErrorKind::kUpstream,
                             "the answer is larger than the limit of " + std::to_string(max_bytes) + " bytes");
      }
    }
    if (call.state() == CallState::kDone && call.body().empty()) break;
    if (call.state() != CallState::kDone) co_await call.wait();
  }
  if (call.cancelled()) co_return make_error(ErrorKind::kCancelled, "cancelled");
  if (call.failed())
    co_return make_error(call.timed_out() ? ErrorKind::kTimeout : ErrorKind::kUpstream, call.error());
  co_return out;
}

std::shared_ptr<Call> with_whole_body(std::shared_ptr<Call> inner, std::string body, AnswerFacts facts) {
  return std::make_shared<WholeBodyCall>(std::move(inner), std::move(body), std::move(facts));
}

}  // namespace frugal::backends
