// A request's JSON Schema (response_format json_schema, a tool's parameters) as the
// engine compiles it for constrained decoding (backends/engine/json_schema_grammar.cpp),
// and the tool-call reader over the same bytes as model output.
//
// Input: byte 0 picks the mode (bit 0: a tool's parameters instead of a response
// schema; bit 1: tool_choice auto), the rest is the schema. When it compiles, the
// grammar's shortest document (one byte at a time along the shortest way to the end,
// over a byte-per-token vocabulary) must parse as JSON; under auto it may be text.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backends/engine/grammar.h"
#include "backends/engine/json_schema_grammar.h"
#include "backends/engine/openai_output.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

class ByteText final : public frugal::engine::TokenText {
 public:
  std::string piece(int32_t t) const override { return t < 256 ? std::string(1, static_cast<char>(t)) : ""; }
  bool is_end_of_generation(int32_t t) const override { return t == 256; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal::engine;
  if (size == 0) return 0;
  const bool tool = data[0] & 1, allow_text = data[0] & 2;
  const std::string_view schema(reinterpret_cast<const char*>(data) + 1, size - 1);

  ToolCallSplitter splitter(allow_text);
  splitter.feed(schema);
  splitter.finish(true);

  frugal::Result<ByteNfa> nfa = tool ? tool_call_nfa(std::vector<ToolSchema>{{"f", std::string(schema), "p"}}, allow_text)
                                     : json_schema_nfa(schema, "schema");
  frugal::fuzz::accepted(nfa.ok());
  if (!nfa.ok()) {
    frugal::fuzz::require(!nfa.error().message.empty(), "a rejection without a message");
    return 0;
  }
  static const ByteText text;
  static const auto vocab = VocabTrie::build(text, 257);
  Grammar g(std::move(nfa).value(), vocab);
  std::string doc;
  int32_t s = g.start();
  for (int step = 0; step < 100'000 && !g.accepting(s); ++step) {
    int32_t best = -1, best_need = 0;
    for (int b = 0; b < 256; ++b) {
      const int32_t ns = g.next(s, static_cast<uint8_t>(b));
      if (ns < 0) continue;
      if (best < 0 || g.tokens_to_finish(ns) < best_need) {
        best = b;
        best_need = g.tokens_to_finish(ns);
      }
    }
    if (best < 0) {
      frugal::fuzz::require(g.overflowed(), "a live state with no way forward");
      return 0;
    }
    doc += static_cast<char>(best);
    s = g.next(s, static_cast<uint8_t>(best));
  }
  if (!g.accepting(s) || allow_text) return 0;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  frugal::fuzz::require(!parser.parse(doc).get(root), "the grammar's shortest document is not JSON");
  return 0;
}
