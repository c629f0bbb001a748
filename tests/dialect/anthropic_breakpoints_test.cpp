#include "backends/dialect/anthropic_breakpoints.h"

#include <doctest/doctest.h>

#include <simdjson.h>

#include <string>

using namespace frugal;

namespace {

// Small thresholds keep the goldens readable: 10 tokens = 40 chars.
BreakpointOptions small() {
  BreakpointOptions o;
  o.min_tokens = 10;
  o.min_tokens_haiku = 20;
  return o;
}

const std::string kLong(60, 'L');   // passes a 40-char minimum on its own
const std::string kShort = "short";

int count(const std::string& s, std::string_view needle) {
  int n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("golden: tools, system string and the stable message prefix get breakpoints") {
  std::string body = R"({"model":"claude-sonnet-4-5","max_tokens":100,
    "tools":[{"name":"a","input_schema":{"type":"object"}},{"name":"b","description":")" + kLong + R"(","input_schema":{"type":"object"}}],
    "system":")" + kLong + R"(",
    "messages":[{"role":"user","content":"q1"},{"role":"assistant","content":[{"type":"text","text":"a1"}]},{"role":"user","content":"q2"}]})";
  auto r = add_anthropic_cache_breakpoints(body, small());
  REQUIRE(r.ok());
  CHECK(*r == 3);
  CHECK(body == R"({"model":"claude-sonnet-4-5","max_tokens":100,"tools":[{"name":"a","input_schema":{"type":"object"}},{"name":"b","description":")" + kLong +
                     R"(","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}],"system":[{"type":"text","text":")" + kLong +
                     R"(","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"q1"},{"role":"assistant","content":[{"type":"text","text":"a1","cache_control":{"type":"ephemeral"}}]},{"role":"user","content":"q2"}]})");
}

TEST_CASE("golden: a string message content becomes a text block, system blocks keep their fields, ttl option") {
  std::string body = R"({"model":"claude-opus-4","system":[{"type":"text","text":"a"},{"type":"text","text":")" + kLong +
                     R"("}],"messages":[{"role":"user","content":"q1"},{"role":"assistant","content":"a1"},{"role":"user","content":"q2"}]})";
  BreakpointOptions o = small();
  o.ttl = "1h";
  auto r = add_anthropic_cache_breakpoints(body, o);
  REQUIRE(r.ok());
  CHECK(*r == 2);
  CHECK(body == R"({"model":"claude-opus-4","system":[{"type":"text","text":"a"},{"type":"text","text":")" + kLong +
                     R"(","cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[{"role":"user","content":"q1"},{"role":"assistant","content":[{"type":"text","text":"a1","cache_control":{"type":"ephemeral","ttl":"1h"}}]},{"role":"user","content":"q2"}]})");
}

TEST_CASE("below the minimum cacheable length nothing is added and the body is untouched") {
  std::string body = R"({"model":"claude-sonnet-4-5", "system":")" + kShort + R"(","messages":[{"role":"user","content":"hi"}]})";
  const std::string before = body;
  auto r = add_anthropic_cache_breakpoints(body, small());
  REQUIRE(r.ok());
  CHECK(*r == 0);
  CHECK(body == before);
  // With the default options (1024 tokens) even the long system prompt is too short.
  std::string longer = R"({"model":"claude-sonnet-4-5","system":")" + kLong + R"("})";
  CHECK(*add_anthropic_cache_breakpoints(longer) == 0);
}

TEST_CASE("the minimum is cumulative: a short tool list is skipped but the system prefix qualifies") {
  std::string body = R"({"model":"claude-sonnet-4-5","tools":[{"name":"t"}],"system":")" + kLong + R"("})";
  auto r = add_anthropic_cache_breakpoints(body, small());
  REQUIRE(r.ok());
  CHECK(*r == 1);
  CHECK(body.find(R"({"name":"t"})") != std::string::npos);  // tool unmarked
  CHECK(count(body, "cache_control") == 1);
}

TEST_CASE("haiku models need the larger minimum") {
  const std::string mid(60, 'm');  // 15 tokens: enough for 10, not for 20
  std::string sonnet = R"({"model":"claude-sonnet-4-5","system":")" + mid + R"("})";
  std::string haiku = R"({"model":"claude-3-5-haiku-latest","system":")" + mid + R"("})";
  CHECK(*add_anthropic_cache_breakpoints(sonnet, small()) == 1);
  CHECK(*add_anthropic_cache_breakpoints(haiku, small()) == 0);
}

TEST_CASE("client breakpoints count toward the limit of 4 and are never changed") {
  std::string body = R"({"model":"claude-sonnet-4-5","tools":[{"name":"t","description":")" + kLong +
                     R"("}],"system":[{"type":"text","text":")" + kLong + R"(","cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[)"
                     R"({"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]},)"
                     R"({"role":"assistant","content":[{"type":"text","text":"y","cache_control":{"type":"ephemeral"}}]},)"
                     R"({"role":"user","content":"z"},{"role":"assistant","content":"w"},{"role":"user","content":"q"}]})";
  auto r = add_anthropic_cache_breakpoints(body, small());
  REQUIRE(r.ok());
  CHECK(*r == 1);  // 3 already set: one left, spent on the longest prefix ("w")
  CHECK(count(body, "cache_control") == 4);
  CHECK(body.find(R"("cache_control":{"type":"ephemeral","ttl":"1h"})") != std::string::npos);
  CHECK(body.find(R"({"role":"assistant","content":[{"type":"text","text":"w","cache_control":{"type":"ephemeral"}}]})") != std::string::npos);
  CHECK(body.find(R"({"name":"t","description":")" + kLong + R"("})") != std::string::npos);  // tool unmarked

  std::string full = body;
  CHECK(*add_anthropic_cache_breakpoints(full, small()) == 0);  // idempotent at the limit
  CHECK(full == body);
}

TEST_CASE("a client breakpoint already closing the stable prefix is not duplicated, thinking blocks are skipped") {
  std::string body = R"({"model":"claude-sonnet-4-5","system":")" + kLong + R"(","messages":[)"
                     R"({"role":"user","content":"q1"},)"
                     R"({"role":"assistant","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}}]},)"
                     R"({"role":"user","content":"q2"}]})";
  auto r = add_anthropic_cache_breakpoints(body, small());
  REQUIRE(r.ok());
  CHECK(*r == 1);  // only the system prompt
  CHECK(count(body, "cache_control") == 2);

  std::string thinking = R"({"model":"claude-sonnet-4-5","system":")" + kShort + R"(","messages":[)"
                         R"({"role":"user","content":")" + kLong + R"("},)"
                         R"({"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"s"}]},)"
                         R"({"role":"user","content":"q2"}]})";
  r = add_anthropic_cache_breakpoints(thinking, small());
  REQUIRE(r.ok());
  CHECK(*r == 1);  // falls back to the previous message's block
  CHECK(thinking.find(R"({"role":"user","content":[{"type":"text","text":")" + kLong + R"(","cache_control":{"type":"ephemeral"}}]})") != std::string::npos);
  CHECK(thinking.find(R"({"type":"thinking","thinking":"hmm","signature":"s"})") != std::string::npos);
}

TEST_CASE("the final user turn is cached only when asked") {
  std::string body = R"({"model":"claude-sonnet-4-5","messages":[{"role":"user","content":")" + kLong + R"("}]})";
  std::string copy = body;
  CHECK(*add_anthropic_cache_breakpoints(copy, small()) == 0);
  BreakpointOptions o = small();
  o.include_final_user_message = true;
  CHECK(*add_anthropic_cache_breakpoints(body, o) == 1);
  CHECK(count(body, "cache_control") == 1);
}

TEST_CASE("a duplicated member is copied as it is: only the first, which was measured, is marked") {
  // Found by tests/fuzz/anthropic_body: a second "messages", "system" or "tools" that is
  // not an array was read as one (undefined behaviour, a crash in a release build).
  std::string body = R"({"model":"m","tools":[{"name":"a","description":")" + kLong + R"("}],"system":")" + kLong +
                     R"(","messages":[{"role":"user","content":")" + kLong +
                     R"("},{"role":"user","content":"q"}],"messages":7,"system":null,"tools":"x"})";
  auto r = add_anthropic_cache_breakpoints(body, small());
  REQUIRE(r.ok());
  CHECK(*r == 3);
  CHECK(count(body, "cache_control") == 3);
  CHECK(body.find(R"("messages":7,"system":null,"tools":"x"})") != std::string::npos);
  simdjson::dom::parser p;
  simdjson::dom::element e;
  CHECK_FALSE(p.parse(body).get(e));
}

TEST_CASE("invalid JSON is an error and leaves the body untouched") {
  std::string body = R"({"model":)";
  auto r = add_anthropic_cache_breakpoints(body, small());
  CHECK_FALSE(r.ok());
  CHECK(body == R"({"model":)");
  std::string arr = "[1,2]";
  CHECK_FALSE(add_anthropic_cache_breakpoints(arr, small()).ok());
}

TEST_CASE("mutated bodies never crash, and every rewrite is valid JSON with at most 4 breakpoints") {
  const std::string seed = R"({"model":"claude-sonnet-4-5","tools":[{"name":"t","description":")" + kLong +
                           R"("}],"system":[{"type":"text","text":")" + kLong + R"("}],"messages":[{"role":"user","content":"q1"},)"
                           R"({"role":"assistant","content":[{"type":"text","text":"a1"},{"type":"tool_use","id":"x","name":"t","input":{}}]},)"
                           R"({"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"r"}]}]})";
  uint64_t rng = 42;
  auto next = [&rng] {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng >> 33;
  };
  const std::string alphabet = "{}[]\":,acem0 \\";
  simdjson::dom::parser parser;
  int rewritten = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string body = seed;
    const int edits = 1 + static_cast<int>(next() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = next() % body.size();
      switch (next() % 3) {
        case 0: body[pos] = alphabet[next() % alphabet.size()]; break;
        case 1: body.erase(pos, 1 + next() % 8); break;
        default: body.insert(pos, 1, alphabet[next() % alphabet.size()]);
      }
    }
    const std::string before = body;
    auto r = add_anthropic_cache_breakpoints(body, small());
    if (!r.ok() || *r == 0) {
      CHECK(body == before);
      continue;
    }
    ++rewritten;
    CHECK_FALSE(parser.parse(body).error());
    CHECK(count(body, "\"cache_control\"") <= 4);
  }
  CHECK(rewritten > 100);  // the mutations still exercise the rewriting path
}
