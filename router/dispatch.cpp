#include "router/dispatch.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <chrono>
#include <random>

#include <simdjson.h>

#include "backends/whole_body.h"
#include "core/http_date.h"
#include "core/ids.h"

namespace frugal::router {

namespace asio = boost::asio;

Result<std::vector<Target>> resolve_model(const config::GatewayConfig& cfg, std::string_view model) {
  std::vector<Target> out;
  for (const auto& a : cfg.aliases) {
    if (a.name != model) continue;
    for (const auto& t : a.replicas) out.push_back(Target{cfg.provider(t.provider), t.model});
    for (const auto& t : a.targets) out.push_back(Target{cfg.provider(t.provider), t.model});
    return out;
  }
  // "<provider>/<model>" for an in-process engine provider: the engine checks the model.
  if (const size_t slash = model.find('/'); slash != std::string_view::npos) {
    const config::ProviderConfig* p = cfg.provider(std::string(model.substr(0, slash)));
    if (p != nullptr && p->kind == config::ProviderKind::kEngine) {
      out.push_back(Target{p, std::string(model.substr(slash + 1))});
      return out;
    }
  }
  for (const auto& r : cfg.passthrough) {
    if (model.substr(0, r.prefix.size()) != r.prefix) continue;
    out.push_back(Target{cfg.provider(r.provider), std::string(model)});
    return out;
  }
  return make_error(ErrorKind::kNotFound,
                    "The model '" + std::string(model) + "' does not exist or you do not have access to it.",
                    "model", "model_not_found");
}

const config::ModelAlias* find_alias(const config::GatewayConfig& cfg, std::string_view model) {
  for (const auto& a : cfg.aliases)
    if (a.name == model) return &a;
  return nullptr;
}

void DispatchControl::cancel() {
  cancelled_ = true;
  if (current_) current_->cancel();
  if (backoff_) backoff_->cancel();
  if (waiter_) waiter_->cancel();
}

void DispatchControl::track(std::shared_ptr<backends::Call> call) {
  current_ = std::move(call);
  if (cancelled_ && current_) current_->cancel();
}

bool is_retriable_status(int status) {
  // 529: Anthropic's "overloaded_error".
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504 || status == 529;
}

int64_t backoff_delay_ms(int attempt, int64_t base_ms, int64_t max_ms, double unit_random) {
  const int64_t cap = std::min<int64_t>(max_ms, base_ms << std::min(attempt, 20));
  return static_cast<int64_t>(unit_random * static_cast<double>(cap));
}

namespace {

bool is_event_stream(const backends::Call& call) {
  return call.header("content-type").find("text/event-stream") != std::string_view::npos;
}

}  // namespace

bool is_stream_answer(const ChatRequest& req, const backends::Call& call) {
  const int status = call.status();
  return req.stream && status >= 200 && status < 300 && is_event_stream(call);
}

std::optional<Error> check_answer(const backends::Call& call, std::string_view body, bool whole,
                                  backends::AnswerFacts* facts, std::optional<Result<TierAnswer>>* answer) {
  const int status = call.status();
  auto bad = [&](std::string why) {
    return make_error(ErrorKind::kUpstream, "the upstream's answer (status " + std::to_string(status) + ") " + why);
  };
  if (status < 200 || status == 204 || status == 205 || (status >= 300 && status < 400))
    return bad("carries no answer");
  // Upstream requests ask for identity (Accept-Encoding); bytes still encoded cannot be
  // read, relayed or cached as they are.
  const std::string_view encoding = call.header("content-encoding");
  if (!encoding.empty() && encoding != "identity") return bad("is encoded (" + std::string(encoding) + ")");
  if (status >= 300) return std::nullopt;  // an error body is read as well as it can be
  if (!whole) return std::nullopt;  // a stream, checked by its relay
  if (is_event_stream(call)) return bad("is an event stream, but the request was not streamed");
  // The per-thread parser keeps the capacity of the largest document it parsed: a rare
  // large answer gets one of its own, freed at once.
  thread_local simdjson::dom::parser kept;
  simdjson::dom::parser once;
  simdjson::dom::parser& parser = body.size() <= (1u << 20) ? kept : once;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size()).get(root) || !root.is_object()) return bad("is not a JSON object");
  simdjson::dom::array choices;
  if (facts && !root["choices"].get_array().get(choices)) {  // a chat.completion (OpenAI shape)
    facts->chat_completion = true;
    simdjson::dom::element usage;
    if (!root["usage"].get(usage)) facts->usage = usage_from_openai(usage);
    for (simdjson::dom::element c : choices) {
      std::string_view reason;
      if (facts->finish_reasons.size() < backends::AnswerFacts::kMaxFinishReasons &&
          !c["finish_reason"].get_string().get(reason))
        facts->finish_reasons.emplace_back(reason);
    }
  }
  if (answer) *answer = tier_answer_of(root);
  return std::nullopt;
}

struct DispatchRun {
  static asio::awaitable<DispatchResult> run(Backends& backends, const std::vector<Target>& targets,
                                             const ChatRequest& req, DispatchControl& control,
                                             bool want_answer);
};

asio::awaitable<DispatchResult> DispatchRun::run(Backends& backends,
                                                 const std::vector<Target>& targets,
                                                 const ChatRequest& req, DispatchControl& control,
                                                 bool want_answer) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  DispatchResult result;
  std::shared_ptr<backends::Call> last_error_call;
  Error last_error = make_error(ErrorKind::kUnavailable, "no upstream could be reached");
  std::optional<asio::steady_timer> backoff;  // made on the first retry: most requests need none

  for (const Target& target : targets) {
    const auto& p = *target.provider;
    for (int attempt = 0; attempt < p.retry.max_attempts; ++attempt) {
      if (control.cancelled()) {
        result.error = make_error(ErrorKind::kCancelled, "client disconnected");
        co_return result;
      }
      auto call = backends.backend(p).start(req, target.model);
      control.current_ = call;
      while (call->state() == backends::CallState::kWaitingHeaders) co_await call->wait();
      int status = call->got_headers() ? call->status() : 0;
      // Everything but a stream is read whole here, while nothing has reached the client:
      // a body that breaks, stalls or is not an answer is then one more failed attempt.
      std::optional<Error> broken;
      if (status > 0 && !is_stream_answer(req, *call)) {
        auto body = co_await backends::read_whole_body(*call, static_cast<size_t>(p.max_answer_bytes));
        if (!body) {
          broken = std::move(body).error();
        } else {
          backends::AnswerFacts facts;
          result.answer.reset();
          if (status < 400)
            broken = check_answer(*call, *body, true, &facts, want_answer ? &result.answer : nullptr);
          call = backends::with_whole_body(std::move(call), std::move(*body), std::move(facts));
        }
      } else if (status > 0) {
        broken = check_answer(*call, {}, false);
      }
      control.current_.reset();
      const int64_t waited = mono_us() - call->started_us();
      result.upstream_wait_us += waited;
      result.attempts.push_back(
          AttemptRecord{p.name, target.model, status, broken ? broken->message : call->error(), waited});

      // read_whole_body cancels a call whose body is too large: that is not the client leaving.
      if (control.cancelled() || (broken ? broken->kind == ErrorKind::kCancelled : call->cancelled())) {
        result.error = make_error(ErrorKind::kCancelled, "client disconnected");
        co_return result;
      }
      if (broken) status = 0;  // as a connection that failed: retried, then the fallbacks
      if (status > 0 && status < 400) {
        result.call = std::move(call);
        result.target = target;
        co_return result;
      }
      if (status >= 400 && !is_retriable_status(status)) {
        result.call = std::move(call);  // e.g. 400/401/404: the client's problem, relay it
        result.target = target;
        co_return result;
      }
      // Retriable: remember it in case every attempt fails.
      int64_t retry_after = -1;
      if (status > 0) {
        last_error_call = call;
        retry_after = parse_retry_after_ms(call->header("retry-after"), wall_us() / 1'000'000);
      } else if (broken) {
        last_error_call.reset();
        last_error = make_error(broken->kind, "upstream '" + p.name + "' failed: " + broken->message);
      } else {
        last_error_call.reset();
        last_error = make_error(call->timed_out() ? ErrorKind::kTimeout : ErrorKind::kUpstream,
                                "upstream '" + p.name + "' failed: " + call->error());
        // The in-process engine has no connection to retry: asked again, it would queue
        // the same work behind what made it late. Go to the fallback instead.
        if (call->timed_out() && p.kind == config::ProviderKind::kEngine) break;
      }
      if (attempt + 1 >= p.retry.max_attempts) break;
      if (retry_after > p.retry.max_delay_ms) break;  // told to wait longer than we may: fall back
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      const int64_t delay =
          std::max(retry_after, backoff_delay_ms(attempt, p.retry.base_delay_ms, p.retry.max_delay_ms, unit(rng)));
      const int64_t t0 = mono_us();
      if (!backoff) backoff.emplace(backends.io_context());
      backoff->expires_after(std::chrono::milliseconds(delay));
      control.backoff_ = &*backoff;
      co_await backoff->async_wait(asio::as_tuple(asio::use_awaitable));
      control.backoff_ = nullptr;
      result.upstream_wait_us += mono_us() - t0;
    }
  }
  if (last_error_call) {
    result.call = std::move(last_error_call);
    result.target = targets.back();
  } else {
    result.error = std::move(last_error);
  }
  co_return result;
}

asio::awaitable<DispatchResult> dispatch_chat(Backends& backends, const std::vector<Target>& targets,
                                              const ChatRequest& req, DispatchControl& control, bool want_answer) {
  return DispatchRun::run(backends, targets, req, control, want_answer);
}

}  // namespace frugal::router
