#include "backends/dialect/openai_stream_assembly.h"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "json_test_util.h"

using namespace frugal;

namespace {

bool valid_json(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  return !parser.parse(json.data(), json.size()).get(e);
}

// A stream as OpenAI sends it: role chunk, content deltas with logprobs, two tool
// calls with incremental arguments, finish chunk, usage chunk.
const std::vector<std::string> kStream = {
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]})",
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":{"content":[{"token":"Hel","logprob":-0.1,"bytes":[72,101,108],"top_logprobs":[]}],"refusal":null},"finish_reason":null}]})",
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"lo"},"logprobs":{"content":[{"token":"lo","logprob":-0.2,"bytes":[108,111],"top_logprobs":[]}],"refusal":null},"finish_reason":null}]})",
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]})",
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"logprobs":null,"finish_reason":null}]})",
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"time","arguments":"{}"}}]},"logprobs":null,"finish_reason":null}]})",
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]},"logprobs":null,"finish_reason":null}]})",
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]})",
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0}}})",
};

const char* kAssembled = R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"message":{"role":"assistant","content":"Hello","refusal":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}},{"id":"call_b","type":"function","function":{"name":"time","arguments":"{}"}}]},"logprobs":{"content":[{"token":"Hel","logprob":-0.1,"bytes":[72,101,108],"top_logprobs":[]},{"token":"lo","logprob":-0.2,"bytes":[108,111],"top_logprobs":[]}],"refusal":null},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0}}})";

}  // namespace

TEST_CASE("assemble_completion_from_chunks merges content, tool calls, logprobs, finish and usage") {
  auto body = assemble_completion_from_chunks(kStream);
  REQUIRE(body.ok());
  CHECK(*body == kAssembled);
}

TEST_CASE("chunks_from_completion then assemble gives the completion back (golden)") {
  auto chunks = chunks_from_completion(kAssembled);
  REQUIRE(chunks.ok());
  // role, 1 content piece (short text), tool a: open + 1 piece, tool b: open + 1 piece, finish, usage.
  CHECK(chunks->size() == 8);
  CHECK(chunks->front() ==
        R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]})");
  CHECK(chunks->back() ==
        R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0}}})");
  auto again = assemble_completion_from_chunks(*chunks);
  REQUIRE(again.ok());
  CHECK(*again == kAssembled);
}

TEST_CASE("long content is split into a few pieces on UTF-8 boundaries") {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "ünïcødé ";
  const std::string body = std::string(R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":")") +
                           text + R"(","refusal":null},"logprobs":null,"finish_reason":"stop"}]})";
  auto chunks = chunks_from_completion(body);
  REQUIRE(chunks.ok());
  CHECK(chunks->size() >= 4);  // role + >= 2 pieces + finish
  CHECK(chunks->size() <= 7);
  for (const auto& c : *chunks) CHECK(valid_json(c));  // each piece is valid UTF-8 JSON
  auto back = assemble_completion_from_chunks(*chunks);
  REQUIRE(back.ok());
  CHECK(test::canon(*back) == test::canon(body));
}

TEST_CASE("a completion without content (tool calls only) keeps content null, refusals survive") {
  const char* tools_only = R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},"logprobs":null,"finish_reason":"tool_calls"}]})";
  auto back = assemble_completion_from_chunks(*chunks_from_completion(tools_only));
  REQUIRE(back.ok());
  CHECK(*back == tools_only);
  const char* refusal = R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"logprobs":null,"finish_reason":"stop"}]})";
  back = assemble_completion_from_chunks(*chunks_from_completion(refusal));
  REQUIRE(back.ok());
  CHECK(*back == refusal);
}

TEST_CASE("multiple choices are split and merged by index") {
  const char* two = R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"A","refusal":null},"logprobs":null,"finish_reason":"stop"},{"index":1,"message":{"role":"assistant","content":"B","refusal":null},"logprobs":null,"finish_reason":"length"}]})";
  auto back = assemble_completion_from_chunks(*chunks_from_completion(two));
  REQUIRE(back.ok());
  CHECK(*back == two);
}

TEST_CASE("malformed input is an error, not a wrong answer") {
  CHECK_FALSE(assemble_completion_from_chunks({}).ok());
  CHECK_FALSE(assemble_completion_from_chunks({"[DONE]"}).ok());
  CHECK_FALSE(assemble_completion_from_chunks({"{\"id\":"}).ok());
  CHECK_FALSE(chunks_from_completion("not json").ok());
  CHECK_FALSE(chunks_from_completion(R"({"id":"x"})").ok());
  CHECK(assemble_completion_from_chunks({kStream[0], "[DONE]"}).ok());
}

TEST_CASE("mutated chunks and bodies never crash the assembler or the splitter") {
  uint64_t rng = 7;
  auto next = [&rng] {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng >> 33;
  };
  const std::string alphabet = "{}[]\":,0-9 \\nule";
  auto mutate = [&](std::string s) {
    const size_t pos = next() % s.size();
    switch (next() % 3) {
      case 0: s[pos] = alphabet[next() % alphabet.size()]; break;
      case 1: s.erase(pos, 1 + next() % 6); break;
      default: s.insert(pos, 1, alphabet[next() % alphabet.size()]);
    }
    return s;
  };
  int ok = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    std::vector<std::string> chunks = kStream;
    auto& victim = chunks[next() % chunks.size()];
    victim = mutate(victim);
    if (auto r = assemble_completion_from_chunks(chunks); r.ok()) {
      ++ok;
      CHECK(valid_json(*r));  // whatever comes out is valid JSON
    }
    if (auto c = chunks_from_completion(mutate(kAssembled)); c.ok())
      for (const auto& chunk : *c) CHECK(valid_json(chunk));
  }
  CHECK(ok > 0);
}

TEST_CASE("append_finish_reasons reads each non-null finish_reason of a chunk and nothing inside strings") {
  std::vector<std::string> out;
  append_finish_reasons(R"({"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]})", out, 16);
  CHECK(out.empty());
  append_finish_reasons(
      R"({"choices":[{"index":0,"delta":{"content":"say \"finish_reason\": \"x\""},"finish_reason" : "stop"},)"
      R"({"index":1,"delta":{},"finish_reason":"length"}]})",
      out, 16);
  REQUIRE(out.size() == 2);
  CHECK(out[0] == "stop");
  CHECK(out[1] == "length");
  append_finish_reasons(R"({"choices":[{"finish_reason":"tool_calls"}]})", out, 2);  // the cap holds
  CHECK(out.size() == 2);
  append_finish_reasons(R"({"choices":[{"finish_reason":"unterminated)", out, 16);  // torn: nothing
  CHECK(out.size() == 2);
}
