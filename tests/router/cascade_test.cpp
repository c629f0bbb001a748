// The cascade executor (router/cascade.h) and tier answers (router/tier_answer.h) over
// fake backends: every model answers with scripted canonical bytes, no network.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/replay_call.h"
#include "core/sse.h"
#include "config/policy_config.h"
#include "router/cascade.h"
#include "router/tier_answer.h"

using namespace frugal;
using namespace frugal::router;

namespace {

std::string completion(const std::string& content, const std::string& logprobs_json = "null", int in = 10,
                       int out = 5) {
  return R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":")" +
         content + R"("},"finish_reason":"stop","logprobs":)" + logprobs_json + R"(}],"usage":{"prompt_tokens":)" +
         std::to_string(in) + R"(,"completion_tokens":)" + std::to_string(out) + "}}";
}

std::string token(const std::string& t, double lp, const std::string& alt = "", double alt_lp = 0) {
  std::string s = R"({"token":")" + t + R"(","logprob":)" + std::to_string(lp) + R"(,"top_logprobs":[)";
  s += R"({"token":")" + t + R"(","logprob":)" + std::to_string(lp) + "}";
  if (!alt.empty()) s += R"(,{"token":")" + alt + R"(","logprob":)" + std::to_string(alt_lp) + "}";
  return s + "]}";
}

// Answers each model with scripted bytes; records what each was asked.
struct FakeBackend final : backends::Backend {
  struct Answer {
    int status = 200;
    std::string body;
    bool sse = false;
  };
  std::map<std::string, Answer> answers;
  std::vector<std::pair<std::string, ChatRequest>> asked;

  std::shared_ptr<backends::Call> start(const ChatRequest& req, std::string_view model) override {
    asked.emplace_back(std::string(model), req);
    auto it = answers.find(std::string(model));
    if (it == answers.end())
      return std::make_shared<backends::ReplayCall>(404, "application/json", R"({"error":{"message":"no such model"}})");
    return std::make_shared<backends::ReplayCall>(it->second.status, it->second.sse ? "text/event-stream" : "application/json",
                                                  it->second.body);
  }
};

struct FakeBackends final : Backends {
  boost::asio::io_context io;
  FakeBackend backend_;
  backends::Backend& backend(const config::ProviderConfig&) override { return backend_; }
  boost::asio::io_context& io_context() override { return io; }
};

struct Fixture {
  config::GatewayConfig cfg;
  std::shared_ptr<const policies::CompiledPolicy> policy;
  FakeBackends fakes;
  ChatRequest req;
  std::string trace_id;  // the request's W3C trace ("": upstream requests carry no traceparent)
  simdjson::dom::parser parser;

  explicit Fixture(const std::string& policy_yaml, const std::string& body =
                                                       R"({"model":"auto","messages":[{"role":"user","content":"Q?"}]})") {
    config::ProviderConfig p;
    p.name = "fake";
    p.retry.max_attempts = 1;
    cfg.providers.push_back(p);
    cfg.passthrough.push_back({"", "fake"});
    auto pc = config::load_policy_text(policy_yaml, "t.yaml");
    REQUIRE_MESSAGE(pc.ok(), (pc.ok() ? "" : pc.error().message));
    auto compiled = policies::compile_policy(*pc);
    REQUIRE(compiled.ok());
    policy = *compiled;
    auto r = parse_chat_body(parser, body);
    REQUIRE(r.ok());
    req = std::move(*r);
  }

  CascadeOutcome run(const std::string& route) {
    CascadeInput in;
    in.cfg = &cfg;
    in.plan = policy->route(route);
    REQUIRE(in.plan);
    in.prices = &policy->prices();
    in.req = &req;
    in.trace_id = trace_id;
    in.question = "Q?";
    DispatchControl control;
    CascadeOutcome out;
    boost::asio::co_spawn(fakes.io, run_cascade(fakes, in, control),
                          [&](std::exception_ptr e, CascadeOutcome o) {
                            REQUIRE(!e);
                            out = std::move(o);
                          });
    fakes.io.run();
    fakes.io.restart();
    return out;
  }
};

constexpr const char* kPolicy = R"(
request_types:
  - name: verified
    match: { header: { x-kind: verified } }
  - name: fast
    match: { header: { x-kind: fast } }
  - name: chat
routes:
  chat:
    reference_model: big
    cascade:
      - model: small
        accept: { mean_logprob: { min: -0.5 } }
      - model: mid
        accept: { json_parse: true }
      - model: big
  verified:
    cascade:
      - model: small
        accept: { verifier: { model: judge, prompt: "{question} / {answer}: yes or no?", min_p_yes: 0.7 } }
      - model: big
  fast:
    stream: first_tier
    cascade:
      - model: small
      - model: big
prices:
  small: { input: 1.00, output: 2.00 }
  mid:   { input: 3.00, output: 4.00 }
  big:   { input: 10.00, output: 20.00 }
  judge: { input: 0.50, output: 0.50 }
)";

}  // namespace

TEST_CASE("parse_tier_answer reads text, tool calls, finish reason, log-probs, top-2 and usage") {
  const std::string lp = R"({"content":[)" + token("Yes", -0.1, "No", -2.5) + "," + token("!", -0.7, "?", -1.0) + "]}";
  auto a = parse_tier_answer(completion("Yes!", lp, 12, 2));
  REQUIRE(a.ok());
  CHECK(a->text == "Yes!");
  CHECK(a->finish_reason == "stop");
  CHECK(a->has_logprobs);
  REQUIRE(a->token_logprobs.size() == 2);
  CHECK(a->token_logprobs[0] == doctest::Approx(-0.1));
  REQUIRE(a->top2.size() == 2);
  CHECK(a->top2[0].first == doctest::Approx(-0.1));
  CHECK(a->top2[0].second == doctest::Approx(-2.5));
  REQUIRE(a->first_token_top.size() == 2);
  CHECK(a->first_token_top[1].first == "No");
  CHECK(a->usage.input_tokens == 12);
  CHECK(a->usage.output_tokens == 2);

  auto plain = parse_tier_answer(completion("hi"));
  REQUIRE(plain.ok());
  CHECK(!plain->has_logprobs);
  CHECK(plain->top2.empty());

  auto tools = parse_tier_answer(
      R"({"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]})");
  REQUIRE(tools.ok());
  REQUIRE(tools->tool_calls.size() == 1);
  CHECK(tools->tool_calls[0].name == "f");
  CHECK(tools->text.empty());

  CHECK(!parse_tier_answer("not json").ok());
  CHECK(!parse_tier_answer(R"({"choices":[]})").ok());
  CHECK(!parse_tier_answer(R"({"error":{"message":"x"}})").ok());
}

TEST_CASE("parse_tier_stream assembles chunks, log-probs across chunks and the usage chunk") {
  const std::vector<std::string> chunks = {
      R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"A"},"logprobs":{"content":[)" +
          token("A", -0.2) + R"(]},"finish_reason":null}]})",
      R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"B"},"logprobs":{"content":[)" +
          token("B", -0.4) + R"(]},"finish_reason":"stop"}]})",
      R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}})"};
  std::string body;
  auto a = parse_tier_stream(chunks, &body);
  REQUIRE(a.ok());
  CHECK(a->text == "AB");
  REQUIRE(a->token_logprobs.size() == 2);
  CHECK(a->token_logprobs[1] == doctest::Approx(-0.4));
  CHECK(a->usage.input_tokens == 7);
  CHECK(body.find("\"chat.completion\"") != std::string::npos);
}

TEST_CASE("replay_sse strips log-probs unless kept and ends with [DONE], tier_request asks only when needed") {
  const std::vector<std::string> p = {R"({"choices":[{"index":0,"delta":{"content":"x"},"logprobs":{"content":[]}}]})"};
  const std::string stripped = replay_sse(p, false);
  CHECK(stripped.find(R"("logprobs":null)") != std::string::npos);
  CHECK(stripped.rfind("data: [DONE]\n\n") == stripped.size() - 14);
  CHECK(replay_sse(p, true).find(R"("logprobs":{"content":[]})") != std::string::npos);

  Fixture f(kPolicy);
  const auto& tiers = f.policy->route("chat")->tiers;
  REQUIRE(tier_request(f.req, tiers[0], true));
  CHECK(tier_request(f.req, tiers[0], true)->sampling.logprobs);
  CHECK(!tier_request(f.req, tiers[0], false));  // live: the client's request as it is
  CHECK(!tier_request(f.req, tiers[1], true));   // json_parse needs no log-probs
  ChatRequest anthropic = f.req;
  anthropic.anthropic_body = R"({"model":"x"})";
  REQUIRE(tier_request(anthropic, tiers[1], true));  // buffered: scored from canonical bytes
  CHECK(tier_request(anthropic, tiers[1], true)->anthropic_body.empty());
  CHECK(!tier_request(anthropic, tiers[1], false));
}

TEST_CASE("replay_sse relays a payload that spans lines as the same payload") {
  // An upstream event with two data lines arrives as one payload joined by '\n'; the
  // replay must frame each line as a data field, or a client reads a different event.
  const std::vector<std::string> p = {"first line\nsecond line", R"({"a":1})"};
  for (bool keep : {true, false}) {
    const std::string bytes = replay_sse(p, keep);
    CHECK(bytes.starts_with("data: first line\ndata: second line\n\n"));
    std::vector<std::string> back;
    SseParser parser;
    parser.feed(bytes, [&](const SseEvent& ev) { back.emplace_back(ev.data); });
    CHECK(back == std::vector<std::string>{"first line\nsecond line", R"({"a":1})", "[DONE]"});
  }
}

TEST_CASE("run_cascade: accept, escalate on a score, on a validator and on an error, the last tier is live") {
  SUBCASE("tier 1 accepted: a replay of its body, log-probs removed") {
    Fixture f(kPolicy);
    f.fakes.backend_.answers["small"] = {200, completion("ok", R"({"content":[)" + token("ok", -0.1) + "]}"), false};
    auto o = f.run("chat");
    REQUIRE(o.call);
    CHECK(!o.live);
    CHECK(o.answer_tier == 0);
    CHECK(o.call->body().find(R"("logprobs":null)") != std::string::npos);
    REQUIRE(o.tiers.size() == 1);
    CHECK(o.tiers[0].status == TierStatus::kAccepted);
    CHECK(o.cost == Money::from_micros(20));  // 10 × 1 + 5 × 2
    REQUIRE(f.fakes.backend_.asked.size() == 1);
    CHECK(f.fakes.backend_.asked[0].second.sampling.logprobs);
  }
  SUBCASE("score too low, then a validator failure: the last tier is handed out live") {
    Fixture f(kPolicy);
    f.fakes.backend_.answers["small"] = {200, completion("meh", R"({"content":[)" + token("meh", -3) + "]}"), false};
    f.fakes.backend_.answers["mid"] = {200, completion("not json"), false};
    f.fakes.backend_.answers["big"] = {200, completion("{}"), false};
    auto o = f.run("chat");
    REQUIRE(o.call);
    CHECK(o.live);
    CHECK(o.answer_tier == 2);
    REQUIRE(o.tiers.size() == 2);
    CHECK(o.tiers[0].status == TierStatus::kRejected);
    CHECK(o.tiers[0].score.has_value());
    CHECK(o.tiers[1].status == TierStatus::kRejected);
    CHECK(o.cost == Money::from_micros(20 + 50));  // small + mid (10 × 3 + 5 × 4); big is priced at the end
  }
  SUBCASE("an error status rejects a tier that is not the last") {
    Fixture f(kPolicy);
    f.fakes.backend_.answers["small"] = {500, R"({"error":{"message":"boom"}})", false};
    f.fakes.backend_.answers["mid"] = {200, completion("[1]"), false};
    auto o = f.run("chat");
    REQUIRE(o.call);
    CHECK(o.answer_tier == 1);
    CHECK(o.tiers[0].status == TierStatus::kError);
    CHECK(o.tiers[0].reason.find("status 500") != std::string::npos);
    CHECK(o.tiers[0].cost == Money::from_micros(0));
  }
  SUBCASE("a cut stream is an error") {
    Fixture f(kPolicy, R"({"model":"auto","stream":true,"messages":[{"role":"user","content":"Q?"}]})");
    f.fakes.backend_.answers["small"] = {200, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n", true};
    f.fakes.backend_.answers["mid"] = {200,
                                       "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"[2]\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
                                       true};
    auto o = f.run("chat");
    REQUIRE(o.call);
    CHECK(o.answer_tier == 1);
    CHECK(o.tiers[0].status == TierStatus::kError);
    CHECK(o.tiers[0].reason.find("terminator") != std::string::npos);
    CHECK(o.call->header("content-type") == "text/event-stream");
    CHECK(o.call->body().find("data: [DONE]") != std::string::npos);
  }
  SUBCASE("first_tier: no buffering, nothing asked for scoring") {
    Fixture f(kPolicy);
    f.fakes.backend_.answers["small"] = {200, completion("fast"), false};
    auto o = f.run("fast");
    CHECK(o.live);
    CHECK(o.answer_tier == 0);
    CHECK(o.tiers.empty());
    CHECK(!f.fakes.backend_.asked[0].second.sampling.logprobs);
  }
}

TEST_CASE("run_cascade: the verifier is asked through the backends and its P(yes) decides") {
  for (const bool yes : {true, false}) {
    CAPTURE(yes);
    Fixture f(kPolicy);
    f.fakes.backend_.answers["small"] = {200, completion("42"), false};
    const std::string top = yes ? token("Yes", -0.05, "No", -4.0) : token("No", -0.05, "Yes", -4.0);
    f.fakes.backend_.answers["judge"] = {200, completion(yes ? "Yes" : "No", R"({"content":[)" + top + "]}", 20, 1), false};
    f.fakes.backend_.answers["big"] = {200, completion("big"), false};
    auto o = f.run("verified");
    REQUIRE(o.call);
    CHECK(o.answer_tier == (yes ? 0 : 1));
    REQUIRE(o.tiers.size() == 2);
    CHECK(o.tiers[1].status == TierStatus::kVerifier);
    CHECK(o.tiers[1].model == "judge");
    REQUIRE(o.tiers[1].score.has_value());
    CHECK(*o.tiers[1].score == doctest::Approx(yes ? 0.98 : 0.02).epsilon(0.01));
    CHECK(o.tiers[1].cost == Money::from_picos(10'500'000));  // 20 × 0.5 + 1 × 0.5 = 10.5 µ$ (was rounded to 11)
    const auto& asked = f.fakes.backend_.asked;
    REQUIRE(asked.size() >= 2);
    CHECK(asked[1].first == "judge");
    CHECK(asked[1].second.messages[0].text() == "Q? / 42: yes or no?");
    CHECK(asked[1].second.sampling.max_tokens == 1);
    CHECK(asked[1].second.sampling.logprobs);
  }
}

TEST_CASE("run_cascade: every upstream request names its own tier or verifier span in a traceparent") {
  Fixture f(kPolicy);
  f.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  f.fakes.backend_.answers["small"] = {200, completion("42"), false};
  f.fakes.backend_.answers["judge"] = {200, completion("No", R"({"content":[)" + token("No", -0.05, "Yes", -4.0) + "]}", 20, 1), false};
  f.fakes.backend_.answers["big"] = {200, completion("big"), false};
  auto o = f.run("verified");
  REQUIRE(o.call);
  REQUIRE(o.live);
  REQUIRE(o.tiers.size() == 2);
  const auto& asked = f.fakes.backend_.asked;
  REQUIRE(asked.size() == 3);
  const uint64_t ids[] = {o.tiers[0].span_id, o.tiers[1].span_id, o.live_tier.span_id};
  for (size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(ids[i] != 0);
    CHECK(asked[i].second.traceparent == traceparent_value(f.trace_id, ids[i], true));
  }
  CHECK(ids[0] != ids[1]);
  CHECK(ids[1] != ids[2]);
  CHECK(f.req.traceparent == asked[2].second.traceparent);  // the live tier went out as the client's request

  Fixture untraced(kPolicy);
  untraced.fakes.backend_.answers["small"] = {200, completion("42"), false};
  untraced.fakes.backend_.answers["judge"] = f.fakes.backend_.answers["judge"];
  untraced.fakes.backend_.answers["big"] = {200, completion("big"), false};
  untraced.run("verified");
  for (const auto& [model, req] : untraced.fakes.backend_.asked) CHECK(req.traceparent.empty());
}

// A call that timed out before its headers, as the HTTP clients and the engine report it.
struct TimedOutCall final : backends::Call {
  boost::asio::awaitable<void> wait() override { co_return; }
  backends::CallState state() const override { return backends::CallState::kDone; }
  int status() const override { return 0; }
  bool got_headers() const override { return false; }
  std::string_view header(std::string_view) const override { return {}; }
  std::string take_body() override { return {}; }
  const std::string& body() const override { return empty_; }
  bool timed_out() const override { return true; }
  bool cancelled() const override { return false; }
  const std::string& error() const override { return error_; }
  void cancel() override {}
  int64_t started_us() const override { return 0; }
  int64_t headers_us() const override { return 0; }
  std::string empty_, error_ = "first-byte timeout";
};

struct TimingOutBackends final : Backends {
  struct B final : backends::Backend {
    int started = 0;
    std::shared_ptr<backends::Call> start(const ChatRequest&, std::string_view) override {
      ++started;
      return std::make_shared<TimedOutCall>();
    }
  };
  boost::asio::io_context io;
  B b;
  backends::Backend& backend(const config::ProviderConfig&) override { return b; }
  boost::asio::io_context& io_context() override { return io; }
};

TEST_CASE("dispatch: a timed-out engine call goes to the fallback at once, an HTTP provider's is retried") {
  simdjson::dom::parser parser;
  auto req = parse_chat_body(parser, R"({"model":"m","messages":[{"role":"user","content":"Q?"}]})");
  REQUIRE(req.ok());
  for (const auto kind : {config::ProviderKind::kEngine, config::ProviderKind::kOpenAi}) {
    CAPTURE(static_cast<int>(kind));
    config::ProviderConfig p;
    p.name = "p";
    p.kind = kind;
    p.retry.max_attempts = 3;
    p.retry.base_delay_ms = 1;
    p.retry.max_delay_ms = 2;
    TimingOutBackends backends;
    DispatchControl control;
    DispatchResult result;
    const std::vector<Target> targets{Target{&p, "m"}};
    boost::asio::co_spawn(backends.io, dispatch_chat(backends, targets, *req, control),
                          [&](std::exception_ptr e, DispatchResult r) {
                            REQUIRE(!e);
                            result = std::move(r);
                          });
    backends.io.run();
    CHECK(backends.b.started == (kind == config::ProviderKind::kEngine ? 1 : 3));
    REQUIRE(result.error.has_value());
    CHECK(result.error->kind == ErrorKind::kTimeout);
  }
}
