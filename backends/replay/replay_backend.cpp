#include "backends/replay/replay_backend.h"

#include "backends/replay_call.h"
#include "core/json.h"

namespace frugal::backends {

std::string completion_of(const ReplayCandidate& c) {
  std::string body;
  body.reserve(256 + c.answer.size() + c.logprobs.size() * 48);
  JsonWriter w(body);
  w.begin_object();
  w.key("object").value("chat.completion");
  w.key("model").value(c.model);
  w.key("choices").begin_array().begin_object();
  w.key("index").value(0);
  w.key("message").begin_object().key("role").value("assistant").key("content").value(c.answer).end_object();
  w.key("finish_reason").value("stop");
  w.key("logprobs");
  if (c.logprobs.empty()) {
    w.null();
  } else {
    w.begin_object().key("content").begin_array();
    for (const auto& t : c.logprobs) {
      w.begin_object().key("token").value(t.token).key("logprob").value(t.logprob);
      w.key("top_logprobs").begin_array();
      for (const auto& [tok, lp] : t.top) w.begin_object().key("token").value(tok).key("logprob").value(lp).end_object();
      w.end_array().end_object();
    }
    w.end_array().end_object();
  }
  w.end_object().end_array();
  const Usage u = c.usage.value_or(Usage{});
  w.key("usage").begin_object();
  w.key("prompt_tokens").value(u.input_tokens);
  w.key("completion_tokens").value(u.output_tokens);
  w.key("total_tokens").value(u.input_tokens + u.output_tokens);
  w.key("prompt_tokens_details").begin_object().key("cached_tokens").value(u.cached_input_tokens).end_object();
  if (u.reasoning_tokens > 0)
    w.key("completion_tokens_details").begin_object().key("reasoning_tokens").value(u.reasoning_tokens).end_object();
  w.end_object();
  if (c.confidence) w.key("frugal_confidence").value(*c.confidence);
  w.end_object();
  return body;
}

std::shared_ptr<Call> ReplayBackend::start(const ChatRequest& /*req*/, std::string_view model) {
  const ReplayCandidate* c = record_ ? record_->candidate(model) : nullptr;
  if (!c) {
    std::string body;
    JsonWriter w(body);
    w.begin_object().key("error").begin_object();
    w.key("message").value("no recorded outcome for model '" + std::string(model) + "' in request '" +
                           (record_ ? record_->id : std::string()) + "'");
    w.key("type").value("not_found_error").key("code").value("replay_missing_candidate");
    w.end_object().end_object();
    return std::make_shared<ReplayCall>(404, "application/json", std::move(body));
  }
  return std::make_shared<ReplayCall>(200, "application/json", completion_of(*c));
}

}  // namespace frugal::backends
