// A route's output shaping applied to both forms of a request (router/output_shaping.h).
#include <doctest/doctest.h>
#include <simdjson.h>

#include <string>

#include "router/output_shaping.h"

using namespace frugal;
using namespace frugal::router;

namespace {

config::OutputShapingSpec spec_all() {
  config::OutputShapingSpec s;
  s.max_tokens = 300;
  s.max_tokens_cap = 500;
  s.stop = {"\n\n\n", "END"};
  s.concise = "Be brief.";
  s.reasoning_effort = "low";
  return s;
}

struct Shaped {
  simdjson::dom::parser client_parser;
  std::string client_body;
  ChatRequest req;
  ShapedBodies keep;
  ShapingRecord rec;
};

void shape(Shaped& s, const std::string& body, const config::OutputShapingSpec& spec) {
  s.client_body = body;
  auto parsed = parse_chat_body(s.client_parser, s.client_body);
  REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? "" : parsed.error().message));
  s.req = std::move(*parsed);
  auto r = shape_request(s.req, spec, s.keep);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  s.rec = *r;
}

}  // namespace

TEST_CASE("shaping an OpenAI request that sets nothing: default max_tokens, stop, concise system, effort") {
  Shaped s;
  shape(s, R"({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.2})", spec_all());
  CHECK(s.rec.applied == (kShapedMaxTokensDefault | kShapedStop | kShapedConcise | kShapedReasoningEffort));
  CHECK(s.rec.max_tokens == 300);
  CHECK(s.req.sampling.max_tokens == 300);
  CHECK(s.req.sampling.stop == std::vector<std::string>{"\n\n\n", "END"});
  REQUIRE(s.req.messages.size() == 2);
  CHECK(s.req.messages[0].role == "system");
  CHECK(s.req.messages[0].text() == "Be brief.");
  CHECK(s.req.messages[1].text() == "hi");
  CHECK(s.req.route_reasoning_effort);
  const std::string_view body = s.req.openai_body;
  CHECK(body.data() == s.keep.openai_body.data());  // the ChatRequest reads the shaped body
  CHECK(body.find(R"("max_completion_tokens":300)") != std::string_view::npos);
  CHECK(body.find(R"("reasoning_effort":"low")") != std::string_view::npos);
  CHECK(body.find(R"("temperature":0.2)") != std::string_view::npos);  // the rest as it was
}

TEST_CASE("shaping an OpenAI request that sets its own: the cap lowers, its effort and stop stay first") {
  Shaped s;
  shape(s,
        R"({"model":"m","max_tokens":9000,"stop":"END","reasoning_effort":"high",)"
        R"("messages":[{"role":"developer","content":[{"type":"text","text":"You help."}]},{"role":"user","content":"hi"}]})",
        spec_all());
  CHECK(s.rec.applied == (kShapedMaxTokensCap | kShapedStop | kShapedConcise));
  CHECK(s.rec.max_tokens == 500);
  CHECK(s.req.sampling.stop == std::vector<std::string>{"END", "\n\n\n"});
  CHECK(s.keep.openai_body.find(R"("max_tokens":500)") != std::string::npos);  // the client's own key
  CHECK(s.keep.openai_body.find("max_completion_tokens") == std::string::npos);
  CHECK(s.keep.openai_body.find(R"("reasoning_effort":"high")") != std::string::npos);
  CHECK_FALSE(s.req.route_reasoning_effort);
  REQUIRE(s.req.messages.size() == 2);
  CHECK(s.req.messages[0].role == "developer");
  CHECK(s.req.messages[0].text() == "You help.Be brief.");  // a part appended to the parts

  Shaped under;  // under the cap: left alone
  config::OutputShapingSpec cap_only;
  cap_only.max_tokens_cap = 500;
  shape(under, R"({"model":"m","max_completion_tokens":100,"messages":[{"role":"user","content":"hi"}]})", cap_only);
  CHECK(under.rec.applied == 0);
  CHECK(under.req.openai_body == under.client_body);  // untouched, not even re-encoded
  Shaped none;  // a cap holds even when the client sets nothing
  shape(none, R"({"model":"m","messages":[{"role":"user","content":"hi"}]})", cap_only);
  CHECK(none.rec.applied == kShapedMaxTokensCap);
  CHECK(none.req.sampling.max_tokens == 500);
}

TEST_CASE("shaping a system string and a full stop list") {
  Shaped s;
  config::OutputShapingSpec spec;
  spec.concise = "Be brief.";
  spec.stop = {"X"};
  shape(s,
        R"({"model":"m","stop":["a","b","c","d"],"messages":[{"role":"system","content":"You help."},{"role":"user","content":"hi"}]})",
        spec);
  CHECK(s.rec.applied == kShapedConcise);  // four stop sequences already: OpenAI takes no fifth
  CHECK(s.req.messages[0].text() == "You help.\n\nBe brief.");
  CHECK(s.req.sampling.stop.size() == 4);
}

TEST_CASE("shaping an Anthropic Messages body: max_tokens capped, stop_sequences added, system appended") {
  config::OutputShapingSpec spec = spec_all();
  ShapingRecord rec;
  auto body = shape_anthropic_body(
      R"({"model":"claude","max_tokens":4096,"system":"You help.","stop_sequences":["Q:"],"messages":[]})", spec, rec);
  REQUIRE(body.ok());
  CHECK(rec.applied == (kShapedMaxTokensCap | kShapedStop | kShapedConcise));
  CHECK(rec.max_tokens == 500);
  CHECK(*body ==
        R"({"model":"claude","max_tokens":500,"system":"You help.\n\nBe brief.","stop_sequences":["Q:","\n\n\n","END"],"messages":[]})");

  ShapingRecord blocks;
  auto b2 = shape_anthropic_body(
      R"({"model":"claude","max_tokens":100,"system":[{"type":"text","text":"S","cache_control":{"type":"ephemeral"}}],"messages":[]})",
      spec, blocks);
  REQUIRE(b2.ok());
  CHECK(blocks.applied == (kShapedStop | kShapedConcise));
  CHECK(b2->find(R"("system":[{"type":"text","text":"S","cache_control":{"type":"ephemeral"}},{"type":"text","text":"Be brief."}])") !=
        std::string::npos);
  CHECK(b2->find(R"("stop_sequences":["\n\n\n","END"])") != std::string::npos);

  ShapingRecord none;
  auto b3 = shape_anthropic_body(R"({"model":"claude","max_tokens":100,"messages":[]})", spec, none);
  REQUIRE(b3.ok());
  CHECK(b3->find(R"("system":"Be brief.")") != std::string::npos);
  CHECK(b3->find("reasoning_effort") == std::string::npos);  // not an Anthropic parameter
}
