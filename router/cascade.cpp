#include "router/cascade.h"

#include <algorithm>
#include <cstdio>

#include "backends/replay_call.h"
#include "config/secrets.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/sse.h"
#include "core/sse_writer.h"

namespace frugal::router {

namespace asio = boost::asio;

namespace {

// A buffered tier's answer beyond this is treated as an error (escalate), never held.
constexpr size_t kMaxBufferedBytes = 16u << 20;
// Alternatives asked of a verifier for its one answer token.
constexpr int kVerifierTopLogprobs = 10;

struct Buffered {
  std::string body;                 // non-stream: the chat.completion body
  std::vector<std::string> chunks;  // stream: the data payloads, [DONE] excluded
  std::string error;                // empty: complete
  int64_t first_byte_us = 0;        // mono_us of the first body bytes
  int64_t done_us = 0;
};

// Reads a started call to its end. `stream`: the body is SSE, no event longer than
// `max_event` bytes.
asio::awaitable<void> buffer_call(backends::Call& call, bool stream, size_t max_event, Buffered& out) {
  SseParser sse(max_event);
  bool saw_done = false;
  size_t total = 0;
  for (;;) {
    std::string bytes = call.take_body();
    if (!bytes.empty()) {
      if (out.first_byte_us == 0) out.first_byte_us = mono_us();
      total += bytes.size();
      if (total > kMaxBufferedBytes) {
        call.cancel();
        out.error = "answer larger than " + std::to_string(kMaxBufferedBytes) + " bytes";
        break;
      }
      if (stream) {
        sse.feed(bytes, [&](const SseEvent& ev) {
          if (ev.data == "[DONE]") saw_done = true;
          else if (!ev.data.empty()) out.chunks.emplace_back(ev.data);
        });
        if (sse.overflowed()) {
          call.cancel();
          out.error = "an SSE event longer than " + std::to_string(max_event) + " bytes (max_sse_event)";
          break;
        }
      } else {
        out.body += bytes;
      }
    }
    if (call.state() == backends::CallState::kDone && call.body().empty()) break;
    if (call.state() != backends::CallState::kDone) co_await call.wait();
  }
  out.done_us = mono_us();
  if (!out.error.empty()) co_return;
  if (call.failed()) out.error = call.timed_out() ? "timed out: " + call.error() : call.error();
  else if (stream && (sse.has_partial() || !saw_done)) out.error = "the stream ended without its terminator";
}

// For the ledger (served by /v1/frugal/ledger): an upstream's error text may echo its key.
std::string error_summary(backends::Call& call, const config::GatewayConfig& cfg) {
  std::string body(call.body().substr(0, 200));
  config::mask_secrets(body, config::config_secrets(cfg));
  return "status " + std::to_string(call.status()) + (body.empty() ? "" : ": " + body);
}

std::string fmt_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

}  // namespace

Money price_tier(const policies::PriceTable* prices, std::string_view model, const Usage& usage, int64_t busy_us,
                 std::string* pricing_error) {
  if (!prices) return Money{};
  auto c = prices->cost_of(model, usage, busy_us);
  if (c) return c->total;
  if (pricing_error && pricing_error->empty()) *pricing_error = c.error().message;
  return Money{};
}

void price_attempt(const policies::PriceTable* prices, TierAttempt& t, std::string* pricing_error) {
  if (!prices) {
    t.cost = Money{};
    t.price = policies::PriceSource::kNone;
    return;
  }
  const policies::PricedCost c =
      prices->price(t.model, t.upstream_model, t.usage, std::max<int64_t>(t.last_byte_us - t.started_us, 0));
  t.cost = c.cost.total;
  t.price = c.source;
  if (c.source == policies::PriceSource::kUnknown && pricing_error && pricing_error->empty())
    *pricing_error = "no price for model '" + t.model + "'";
}

std::optional<ChatRequest> tier_request(const ChatRequest& client, const policies::PlannedTier& tier,
                                        bool buffered) {
  // A buffered tier is scored from canonical bytes: an Anthropic provider must translate
  // rather than pass the client's Anthropic body through (when a canonical form exists).
  const bool drop_anthropic_body = buffered && !client.messages.empty() && !client.anthropic_body.empty();
  if (!drop_anthropic_body && !(buffered && tier.needs_logprobs)) return std::nullopt;
  ChatRequest r = client;
  if (drop_anthropic_body) r.anthropic_body = {};
  if (buffered && tier.needs_logprobs) {
    r.sampling.logprobs = true;
    const int64_t want = std::max<int64_t>(tier.top_logprobs, client.sampling.top_logprobs.value_or(0));
    if (want > 0) r.sampling.top_logprobs = want;
  }
  return r;
}

std::string replay_sse(const std::vector<std::string>& payloads, bool keep_logprobs) {
  std::string out;
  if (keep_logprobs) {
    append_sse_stream(out, payloads);
    return out;
  }
  size_t n = kSseDone.size();
  for (const auto& p : payloads) n += p.size() + 8;
  out.reserve(n);
  for (const auto& p : payloads) append_sse_event(out, policies::strip_logprobs(p));
  append_sse_done(out);
  return out;
}

struct CascadeRun {
  Backends& backends;
  const CascadeInput& in;
  DispatchControl& control;
  CascadeOutcome out;

  void add(TierAttempt t) {
    out.cost += t.cost;
    out.tiers.push_back(std::move(t));
  }

  // A new span for a tier or verifier call; `req`'s upstream request will name it.
  uint64_t open_span(ChatRequest& req) const {
    const uint64_t id = new_span_id();
    if (!in.trace_id.empty()) req.traceparent = traceparent_value(in.trace_id, id, in.sampled);
    return id;
  }

  TierAttempt error_tier(const std::string& model, std::string provider, int64_t started, std::string reason,
                         uint64_t span_id) {
    TierAttempt t;
    t.span_id = span_id;
    t.model = model;
    t.provider = std::move(provider);
    t.started_us = started;
    t.last_byte_us = mono_us();
    t.status = TierStatus::kError;
    t.reason = std::move(reason);
    return t;
  }

  asio::awaitable<std::optional<double>> verify(size_t tier_index, const config::VerifierSpec& v,
                                               std::string_view answer_text);
  asio::awaitable<void> run();
};

// Asks the verifier model its yes/no question and returns P(yes), or nullopt when it
// could not be asked (the rule then rejects, saying the verifier result is missing).
asio::awaitable<std::optional<double>> CascadeRun::verify(size_t tier_index, const config::VerifierSpec& v,
                                                          std::string_view answer_text) {
  const int64_t started = mono_us();
  std::string body;
  JsonWriter w(body);
  w.begin_object();
  w.key("model").value(v.model);
  w.key("messages").begin_array().begin_object();
  w.key("role").value("user");
  w.key("content").value(policies::render_verifier_prompt(v, in.question, answer_text));
  w.end_object().end_array();
  w.key("max_tokens").value(1);
  w.key("temperature").value(0);
  w.key("logprobs").value(true);
  w.key("top_logprobs").value(kVerifierTopLogprobs);
  w.end_object();
  simdjson::dom::parser parser;  // holds the request's document while dispatch may retry
  auto vreq = parse_chat_body(parser, body);
  const std::string label = "verifier of tier " + std::to_string(tier_index + 1);
  if (!vreq) {
    TierAttempt t = error_tier(v.model, "", started, label + ": " + vreq.error().message, new_span_id());
    t.status = TierStatus::kVerifier;
    add(std::move(t));
    co_return std::nullopt;
  }
  const uint64_t span = open_span(*vreq);
  auto targets = resolve_model(*in.cfg, v.model);
  if (!targets) {
    TierAttempt t = error_tier(v.model, "", started, label + ": " + targets.error().message, span);
    t.status = TierStatus::kVerifier;
    add(std::move(t));
    co_return std::nullopt;
  }
  DispatchResult r = co_await dispatch_chat(backends, *targets, *vreq, control);
  out.upstream_wait_us += r.upstream_wait_us;
  if (r.error || r.call->status() >= 400) {
    TierAttempt t = error_tier(v.model, r.target.provider ? r.target.provider->name : "", started,
                               label + " failed: " + (r.error ? r.error->message : error_summary(*r.call, *in.cfg)),
                               span);
    t.status = TierStatus::kVerifier;
    t.transport = std::move(r.attempts);
    add(std::move(t));
    co_return std::nullopt;
  }
  control.track(r.call);
  Buffered b;
  co_await buffer_call(*r.call, false, SseParser::kDefaultMaxEventBytes, b);
  control.track(nullptr);
  out.upstream_wait_us += b.done_us - started - r.upstream_wait_us;
  TierAttempt t;
  t.span_id = span;
  t.model = v.model;
  t.provider = r.target.provider->name;
  t.upstream_model = r.target.model;
  t.transport = std::move(r.attempts);
  t.status = TierStatus::kVerifier;
  t.started_us = started;
  t.first_byte_us = r.call->headers_us() > 0 ? r.call->headers_us() : b.done_us;
  t.last_byte_us = b.done_us;
  std::optional<double> p_yes;
  auto a = b.error.empty() ? parse_tier_answer(b.body) : Result<TierAnswer>(make_error(ErrorKind::kUpstream, b.error));
  if (!a) {
    t.reason = label + " failed: " + a.error().message;
  } else {
    t.usage = a->usage;
    std::vector<policies::TokenLogprob> top;
    for (const auto& [tok, lp] : a->first_token_top) top.push_back({tok, lp});
    if (top.empty()) {
      t.reason = label + ": the verifier returned no log-probs";
    } else {
      p_yes = policies::p_yes_from_top_logprobs(top);
      t.score = p_yes;
      t.reason = label + ": P(yes) " + fmt_double(*p_yes);
    }
  }
  price_attempt(in.prices, t, &out.pricing_error);
  add(std::move(t));
  co_return p_yes;
}

asio::awaitable<void> CascadeRun::run() {
  const policies::RoutePlan& plan = *in.plan;
  const bool first_tier_mode = plan.stream_mode == config::StreamMode::kFirstTier;
  const bool keep_logprobs = in.req->sampling.logprobs;
  for (size_t i = 0; i < plan.tiers.size(); ++i) {
    const policies::PlannedTier& tier = plan.tiers[i];
    const bool buffered = !tier.last && !first_tier_mode;
    const int64_t started = mono_us();
    std::optional<ChatRequest> changed = tier_request(*in.req, tier, buffered);
    ChatRequest& treq = changed ? *changed : *in.req;
    const uint64_t span = open_span(treq);
    Result<std::vector<Target>> resolved =
        in.tier_targets ? Result<std::vector<Target>>(make_error(ErrorKind::kInternal, "")) : resolve_model(*in.cfg, tier.model);
    const Result<std::vector<Target>>& targets = in.tier_targets ? (*in.tier_targets)[i] : resolved;
    if (!targets) {
      if (tier.last) {
        add(error_tier(tier.model, "", started, targets.error().message, span));
        out.error = targets.error();
        co_return;
      }
      add(error_tier(tier.model, "", started, targets.error().message, span));
      continue;
    }
    DispatchResult r = co_await dispatch_chat(backends, *targets, treq, control, buffered && !treq.stream);
    out.upstream_wait_us += r.upstream_wait_us;
    const std::string provider = r.target.provider ? r.target.provider->name : "";
    if (r.error) {
      if (r.error->kind == ErrorKind::kCancelled) {
        out.error = std::move(r.error);
        co_return;
      }
      TierAttempt failed = error_tier(tier.model, provider, started, r.error->message, span);
      failed.transport = std::move(r.attempts);
      add(std::move(failed));
      if (tier.last) {
        out.error = std::move(r.error);
        co_return;
      }
      continue;
    }
    if (!tier.last && r.call->status() >= 400) {
      TierAttempt failed = error_tier(tier.model, provider, started, error_summary(*r.call, *in.cfg), span);
      failed.upstream_model = r.target.model;
      failed.transport = std::move(r.attempts);
      add(std::move(failed));
      continue;
    }
    if (!buffered) {  // the last tier, or first_tier mode: the client gets it as it comes
      TierAttempt live;
      live.span_id = span;
      live.model = tier.model;
      live.provider = provider;
      live.upstream_model = r.target.model;
      live.transport = std::move(r.attempts);
      live.started_us = started;
      out.live_tier = std::move(live);
      out.call = std::move(r.call);
      out.live = true;
      out.answer_tier = static_cast<int>(i);
      out.target = r.target;
      co_return;
    }

    control.track(r.call);
    Buffered b;
    co_await buffer_call(*r.call, treq.stream, static_cast<size_t>(r.target.provider->max_sse_event_bytes), b);
    control.track(nullptr);
    out.upstream_wait_us += b.done_us - started - r.upstream_wait_us;
    if (control.cancelled()) {
      out.error = make_error(ErrorKind::kCancelled, "client disconnected");
      co_return;
    }
    TierAttempt t;
    t.span_id = span;
    t.model = tier.model;
    t.provider = provider;
    t.upstream_model = r.target.model;
    t.transport = std::move(r.attempts);
    t.started_us = started;
    t.last_byte_us = b.done_us;
    const int64_t first = treq.stream ? b.first_byte_us : r.call->headers_us();
    t.first_byte_us = first > 0 ? first : b.done_us;
    std::string completion;
    auto answer = !b.error.empty() ? Result<TierAnswer>(make_error(ErrorKind::kUpstream, b.error))
                  : treq.stream    ? parse_tier_stream(b.chunks, &completion)
                  : r.answer       ? std::move(*r.answer)
                                   : parse_tier_answer(b.body);
    if (!answer) {
      t.status = TierStatus::kError;
      t.reason = answer.error().message;
      price_attempt(in.prices, t, &out.pricing_error);
      add(std::move(t));
      continue;
    }
    t.usage = answer->usage;
    if (!answer->finish_reason.empty()) t.finish_reasons.push_back(answer->finish_reason);
    price_attempt(in.prices, t, &out.pricing_error);
    const size_t tier_entry = out.tiers.size();
    add(std::move(t));
    std::optional<double> p_yes;
    if (tier.verifier) p_yes = co_await verify(i, *tier.verifier, answer->text);
    if (control.cancelled()) {
      out.error = make_error(ErrorKind::kCancelled, "client disconnected");
      co_return;
    }
    policies::Decision d;
    if (tier.rule) {
      d = tier.rule->evaluate(answer->view(in.response_schema_json, p_yes));
    } else {
      d.accepted = true;
      d.reason = "no rule";
    }
    TierAttempt& entry = out.tiers[tier_entry];
    entry.score = d.score;
    entry.reason = std::move(d.reason);
    if (!d.accepted) {
      entry.status = TierStatus::kRejected;
      continue;
    }
    entry.status = TierStatus::kAccepted;
    out.answer_tier = static_cast<int>(i);
    out.target = r.target;
    out.answer_usage = answer->usage;
    // Log-probs the gateway asked for on the client's behalf are not the client's.
    const bool keep = keep_logprobs || !tier.needs_logprobs;
    if (treq.stream) {
      out.call = std::make_shared<backends::ReplayCall>(200, "text/event-stream", replay_sse(b.chunks, keep));
    } else {
      auto replay = std::make_shared<backends::ReplayCall>(
          200, "application/json", keep ? std::move(b.body) : policies::strip_logprobs(b.body));
      if (const backends::AnswerFacts* facts = r.call->answer_facts()) replay->set_answer_facts(*facts);
      out.call = std::move(replay);
    }
    co_return;
  }
  // Unreachable with a well-formed plan (the last tier always returns above).
  out.error = make_error(ErrorKind::kInternal, "the route has no tiers");
}

asio::awaitable<CascadeOutcome> run_cascade(Backends& backends, const CascadeInput& in, DispatchControl& control) {
  CascadeRun run{backends, in, control, {}};
  co_await run.run();
  co_return std::move(run.out);
}

}  // namespace frugal::router
