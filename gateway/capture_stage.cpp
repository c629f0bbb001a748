// ChatExchange's capture stage: a route's sampled requests written as replay-log lines
// (gateway/capture.h) by the server's CaptureWriter, off the request path; a shadowed
// request also goes to the route's reference model in the background, its cost booked
// (budgets, shadow cost) and its answer labelling this one by agreement. See
// docs/replay.md, "Capturing live traffic".
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <random>

#include "core/ids.h"
#include "core/log.h"
#include "gateway/capture.h"
#include "gateway/capture_writer.h"
#include "gateway/chat_exchange.h"
#include "gateway/routing.h"
#include "gateway/server.h"
#include "router/tier_answer.h"

namespace frugal::gateway {

namespace {

// An answer beyond this is not kept for its capture line (the line carries no answer).
constexpr size_t kMaxCapturedAnswerBytes = 1u << 20;

double unit_random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, 1)(rng);
}

std::string answer_text(const RouteState& rs) {
  auto a = !rs.capture_payloads.empty() ? router::parse_tier_stream(rs.capture_payloads, nullptr)
                                        : router::parse_tier_answer(rs.capture_body);
  return a ? a->text : std::string();
}

struct ShadowJob {
  std::shared_ptr<const Snapshot> snap;  // config, prices and budgets of the request
  std::string body;                      // the client's OpenAI body, re-parsed here
  std::string reference_model;
  router::RequestTrace trace;
  config::CaptureRedact redact = config::CaptureRedact::kHash;
  std::string request_json;
  std::string answer;
};

// Runs on the worker's io_context after the client has its answer.
boost::asio::awaitable<void> run_shadow(Worker& w, std::shared_ptr<ShadowJob> job) {
  simdjson::dom::parser parser;
  auto req = parse_chat_body(parser, job->body);
  const config::GatewayConfig& cfg = *job->snap->cfg;
  auto targets = req ? router::resolve_model(cfg, job->reference_model)
                     : Result<std::vector<router::Target>>(req.error());
  if (!targets) {
    log::warn("shadow of request " + job->trace.request_id + ": " + targets.error().message);
    co_return;
  }
  req->stream = false;
  req->model = job->reference_model;
  const int64_t started = mono_us();
  router::DispatchControl control;
  router::DispatchResult r = co_await router::dispatch_chat(w, *targets, *req, control);
  if (r.error || r.call->status() >= 400) {
    log::warn("shadow of request " + job->trace.request_id + " to " + job->reference_model + " failed: " +
              (r.error ? r.error->message : "status " + std::to_string(r.call->status())));
    co_return;
  }
  auto a = router::parse_tier_answer(r.call->body());
  if (!a) {
    log::warn("shadow of request " + job->trace.request_id + ": " + a.error().message);
    co_return;
  }
  ShadowOutcome s;
  s.model = job->reference_model;
  s.answer = a->text;
  s.usage = a->usage;
  s.latency_ms = (mono_us() - started) / 1000;
  const policies::CompiledPolicy* policy = job->snap->policy.get();
  s.cost = router::price_tier(policy ? &policy->prices() : nullptr, s.model, s.usage, mono_us() - started, nullptr);
  w.server.add_shadow_cost(s.cost);
  if (job->snap->budgets && s.cost != Money{})
    job->snap->budgets->record(policies::BudgetFacts{job->trace.team, job->trace.key_id, job->trace.request_type},
                               s.cost);
  if (CaptureWriter* c = w.server.capture())
    c->write(capture_line(job->trace, job->redact, job->request_json, job->answer, &s));
}

}  // namespace

void decide_capture(RouteState& rs, const ChatRequest& req) {
  const config::CaptureSpec& c = rs.plan->capture;
  if (c.sample <= 0 && c.shadow <= 0) return;
  rs.shadow = c.shadow > 0 && unit_random() < c.shadow && !req.openai_body.empty();
  rs.capture = rs.shadow || (c.sample > 0 && unit_random() < c.sample);
  if (!rs.capture) return;
  rs.capture_request = capture_request_json(req, c.redact);
  if (rs.shadow) rs.shadow_body = std::string(req.openai_body);
}

void keep_capture_answer(RouteState& rs, const SseEvent* ev, std::string_view body) {
  const std::string_view bytes = ev ? ev->data : body;
  if (rs.capture_bytes + bytes.size() > kMaxCapturedAnswerBytes) {
    rs.capture_payloads.clear();
    rs.capture_body.clear();
    rs.capture_bytes = kMaxCapturedAnswerBytes + 1;
    return;
  }
  rs.capture_bytes += bytes.size();
  if (!ev) rs.capture_body.append(body);
  else if (!ev->data.empty() && ev->data != "[DONE]") rs.capture_payloads.emplace_back(ev->data);
}

void ChatExchange::capture_finish() {
  RouteState& rs = *routing_;
  // A cache hit tried no model: there is no outcome to record.
  if (!rs.capture || trace_.answered_from_cache() || trace_.answer_model.empty() || trace_.status >= 400) return;
  CaptureWriter* writer = w_.server.capture();
  if (!writer) return;
  const config::CaptureRedact redact = rs.plan->capture.redact;
  std::string answer = answer_text(rs);
  if (rs.shadow && trace_.answer_model != rs.plan->reference_model) {
    auto job = std::make_shared<ShadowJob>();
    job->snap = rs.snap;
    job->body = std::move(rs.shadow_body);
    job->reference_model = rs.plan->reference_model;
    job->trace = trace_;
    job->redact = redact;
    job->request_json = std::move(rs.capture_request);
    job->answer = std::move(answer);
    boost::asio::co_spawn(w_.io, run_shadow(w_, std::move(job)), boost::asio::detached);
    return;
  }
  if (!writer->write(capture_line(trace_, redact, rs.capture_request, answer, nullptr)))
    log::debug("request " + ctx_.request_id + ": capture queue full, line dropped");
}

}  // namespace frugal::gateway
