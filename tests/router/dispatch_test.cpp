// dispatch_chat's handling of answers that are not answers (router/dispatch.h), over
// fake backends replaying scripted bytes: no network.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/replay_call.h"
#include "router/dispatch.h"

using namespace frugal;
using namespace frugal::router;

namespace {

const std::string kAnswer =
    R"({"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]})";

struct Scripted {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Each upstream model answers with its script.
struct FakeBackend final : backends::Backend {
  std::map<std::string, Scripted> answers;
  std::vector<std::string> asked;
  std::shared_ptr<backends::Call> start(const ChatRequest&, std::string_view model) override {
    asked.emplace_back(model);
    const Scripted& s = answers.at(std::string(model));
    return std::make_shared<backends::ReplayCall>(s.status, s.content_type, s.body, s.headers);
  }
};

struct FakeBackends final : Backends {
  boost::asio::io_context io;
  FakeBackend backend_;
  backends::Backend& backend(const config::ProviderConfig&) override { return backend_; }
  boost::asio::io_context& io_context() override { return io; }
};

struct Fixture {
  config::ProviderConfig provider;
  FakeBackends fakes;
  simdjson::dom::parser parser;
  ChatRequest req;

  explicit Fixture(bool stream = false) {
    provider.name = "fake";
    provider.retry.max_attempts = 1;
    auto r = parse_chat_body(parser, std::string(R"({"model":"m","messages":[{"role":"user","content":"Q?"}])") +
                                         (stream ? R"(,"stream":true})" : "}"));
    REQUIRE(r.ok());
    req = std::move(*r);
  }

  // The primary answers `broken`, the fallback a good answer.
  DispatchResult run(const Scripted& broken, bool want_answer = false) {
    fakes.backend_.answers["primary"] = broken;
    fakes.backend_.answers["fallback"] = Scripted{200, "application/json", kAnswer, {}};
    const std::vector<Target> targets{{&provider, "primary"}, {&provider, "fallback"}};
    DispatchControl control;
    DispatchResult out;
    boost::asio::co_spawn(fakes.io, dispatch_chat(fakes, targets, req, control, want_answer),
                          [&](std::exception_ptr e, DispatchResult r) {
                            REQUIRE(!e);
                            out = std::move(r);
                          });
    fakes.io.run();
    fakes.io.restart();
    return out;
  }
};

}  // namespace

TEST_CASE("a 200 that is no answer is a failed attempt and the fallback answers") {
  const std::vector<std::pair<const char*, Scripted>> cases{
      {"not JSON", {200, "application/json", "this is not json", {}}},
      {"a JSON array", {200, "application/json", "[1,2]", {}}},
      {"SSE for a non-streamed request", {200, "text/event-stream", "data: {}\n\ndata: [DONE]\n\n", {}}},
      {"204", {204, "application/json", "", {}}},
      {"304", {304, "application/json", "", {}}},
      {"a redirect", {302, "text/html", "", {{"location", "http://elsewhere/"}}}},
      {"gzip", {200, "application/json", std::string("\x1f\x8b\x08\x00", 4), {{"content-encoding", "gzip"}}}},
  };
  for (const auto& [what, scripted] : cases) {
    CAPTURE(what);
    Fixture f;
    DispatchResult r = f.run(scripted);
    REQUIRE(!r.error);
    REQUIRE(r.call);
    CHECK(r.target.model == "fallback");
    CHECK(r.call->status() == 200);
    CHECK(r.call->body() == kAnswer);
    REQUIRE(r.attempts.size() == 2);
    CHECK(!r.attempts[0].error.empty());
    CHECK(r.attempts[1].error.empty());
  }
}

TEST_CASE("with no fallback a broken answer is a 502 error, not the upstream's bytes") {
  Fixture f;
  f.fakes.backend_.answers["primary"] = Scripted{200, "application/json", "<html>oops</html>", {}};
  const std::vector<Target> targets{{&f.provider, "primary"}};
  DispatchControl control;
  DispatchResult out;
  boost::asio::co_spawn(f.fakes.io, dispatch_chat(f.fakes, targets, f.req, control),
                        [&](std::exception_ptr e, DispatchResult r) {
                          REQUIRE(!e);
                          out = std::move(r);
                        });
  f.fakes.io.run();
  REQUIRE(out.error);
  CHECK(!out.call);
  CHECK(out.error->http_status() == 502);
  CHECK(out.error->message.find("not a JSON object") != std::string::npos);
}

TEST_CASE("an answer over max_answer is a failed attempt") {
  Fixture f;
  f.provider.max_answer_bytes = 1000;
  DispatchResult r = f.run(Scripted{200, "application/json", std::string(2000, ' ') + kAnswer, {}});
  REQUIRE(!r.error);
  CHECK(r.target.model == "fallback");
  REQUIRE(r.attempts.size() == 2);
  CHECK(r.attempts[0].error.find("larger than the limit") != std::string::npos);
}

TEST_CASE("a streamed request gets an SSE answer live and a JSON answer read whole") {
  Fixture f(true);
  DispatchResult sse = f.run(Scripted{200, "text/event-stream", "data: {}\n\ndata: [DONE]\n\n", {}});
  REQUIRE(sse.call);
  CHECK(sse.target.model == "primary");
  CHECK(is_stream_answer(f.req, *sse.call));
  Fixture g(true);
  DispatchResult json = g.run(Scripted{200, "application/json", "not json", {}});
  REQUIRE(json.call);
  CHECK(json.target.model == "fallback");
}

TEST_CASE("a cascade gets the answer read from the parse that checked it") {
  const std::string answer =
      R"({"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"four"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":6,"total_tokens":18}})";
  Fixture f;
  DispatchResult r = f.run(Scripted{200, "application/json", answer, {}}, true);
  REQUIRE(r.call);
  CHECK(r.target.model == "primary");
  REQUIRE(r.answer.has_value());
  REQUIRE(r.answer->ok());
  CHECK((*r.answer)->text == "four");
  CHECK((*r.answer)->finish_reason == "stop");
  CHECK((*r.answer)->usage.input_tokens == 12);
  CHECK((*r.answer)->usage.output_tokens == 6);
  auto reparsed = parse_tier_answer(answer);  // the same as a parse of its own
  REQUIRE(reparsed.ok());
  CHECK(reparsed->text == (*r.answer)->text);

  // A broken primary leaves no answer of its own: the fallback's is the one read.
  Fixture g;
  DispatchResult fb = g.run(Scripted{200, "application/json", "not json", {}}, true);
  REQUIRE(fb.answer.has_value());
  REQUIRE(fb.answer->ok());
  CHECK((*fb.answer)->text == "ok");

  // Without want_answer (pass-through) nothing more is read.
  Fixture h;
  CHECK_FALSE(h.run(Scripted{200, "application/json", answer, {}}).answer.has_value());
}
