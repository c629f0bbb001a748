// Anthropic-dialect JSON as frugal reads it: a client's /v1/messages body through
// validation (backends/dialect/anthropic_request.cpp), translation to an OpenAI body
// (which the gateway then parses as one) and provider prompt-cache breakpoints; the
// same bytes as an upstream's Anthropic message or error body.
//
// Input: byte 0 picks the translation options, the rest is the JSON.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backends/dialect/anthropic_breakpoints.h"
#include "backends/dialect/anthropic_request.h"
#include "backends/dialect/errors.h"
#include "backends/dialect/responses.h"
#include "core/chat.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal;
  if (size == 0) return 0;
  AnthropicToOpenAiOptions options;
  options.upstream_supports_top_k = data[0] & 1;
  options.forward_cache_control = data[0] & 2;
  options.use_max_completion_tokens = data[0] & 4;
  options.upstream_supports_reasoning_effort = data[0] & 8;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  simdjson::dom::parser parser;
  simdjson::dom::element root;
  bool ok = false;
  if (!parser.parse(body.data(), body.size()).get(root)) {
    auto info = parse_anthropic_request(root);
    ok = info.ok();
    if (ok) fuzz::require(info->max_tokens > 0, "max_tokens accepted without a positive value");
    auto openai = anthropic_to_openai_request(root, "gpt-x", options);
    if (openai.ok()) {
      simdjson::dom::parser chat_parser;
      auto chat = parse_chat_body(chat_parser, *openai);
      fuzz::require(chat.ok() || !chat.error().message.empty(), "a rejection without a message");
    }
  }
  fuzz::accepted(ok);

  std::string rewritten(body);
  BreakpointOptions breakpoints;  // a minimum small enough for the fuzzer's short prefixes
  breakpoints.min_tokens = breakpoints.min_tokens_haiku = 1;
  breakpoints.include_final_user_message = data[0] & 16;
  auto added = add_anthropic_cache_breakpoints(rewritten, breakpoints);
  if (added.ok() && *added > 0) {
    simdjson::dom::parser check;
    simdjson::dom::element out;
    fuzz::require(!check.parse(rewritten).get(out), "breakpoints made the body invalid JSON");
  } else {
    fuzz::require(rewritten == body, "a failed or empty breakpoint pass changed the body");
  }

  // The body as an upstream's answer.
  auto translated = anthropic_to_openai_response(body, "gpt-x", 0);
  if (translated.ok()) {
    simdjson::dom::parser check;
    simdjson::dom::element out;
    fuzz::require(!check.parse(translated->body).get(out), "the chat.completion is not JSON");
  }
  (void)error_from_anthropic_body(400, body);
  return 0;
}
