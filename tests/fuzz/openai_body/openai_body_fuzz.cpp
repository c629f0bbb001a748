// OpenAI-dialect JSON as frugal reads it: a client's /v1/chat/completions body through
// validation (core/chat.cpp), what routing and the cache derive from it, and its
// translation for an Anthropic upstream; the same bytes as an upstream's chat.completion
// answer or error body (usage, translation to an Anthropic message, cache replay form).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backends/dialect/errors.h"
#include "backends/dialect/openai_stream_assembly.h"
#include "backends/dialect/openai_to_anthropic.h"
#include "backends/dialect/responses.h"
#include "cache/cache_key.h"
#include "cache/canonical_json.h"
#include "core/chat.h"
#include "core/json_scan.h"
#include "core/usage.h"
#include "policies/request_facts.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal;
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  simdjson::dom::parser parser;
  auto req = parse_chat_body(parser, body);
  fuzz::accepted(req.ok());
  if (req.ok()) {
    const policies::ChatFacts facts = policies::extract_chat_facts(*req);
    fuzz::require(facts.prompt_chars >= 0, "negative prompt size");
    const cache::KeyScope scope{"route", "model", "tenant", false};
    fuzz::require(cache::make_cache_key(*req, scope) == cache::make_cache_key(*req, scope),
                  "the cache key is not a function of the request");
    (void)cache::is_cacheable_by_default(*req);
    auto anthropic = openai_to_anthropic_request(*req, "claude-x", AnthropicDefaults{});
    if (anthropic.ok()) {
      simdjson::dom::parser check;
      simdjson::dom::element out;
      fuzz::require(!check.parse(*anthropic).get(out), "the Anthropic translation is not JSON");
    }
  } else {
    fuzz::require(!req.error().message.empty(), "a rejection without a message");
  }

  if (req.ok()) (void)response_format_tool(*req);

  // The body as an upstream's answer.
  (void)usage_of_openai_body(body);
  auto translated = openai_to_anthropic_response(body, "claude-x");
  if (translated.ok()) {
    simdjson::dom::parser check;
    simdjson::dom::element out;
    fuzz::require(!check.parse(translated->body).get(out), "the Anthropic message is not JSON");
  }
  (void)error_from_openai_body(400, body);
  (void)chunks_from_completion(body);
  auto canonical = cache::canonical_json(body);
  if (canonical.ok()) {
    auto again = cache::canonical_json(*canonical);
    fuzz::require(again.ok() && *again == *canonical, "canonical JSON is not a fixed point");
  }
  // The byte-level member walk (provider.cpp rewrites `model` with it) on unvalidated text.
  size_t members = 0;
  (void)json_scan::for_each_member(body, 0, [&](std::string_view, size_t b, size_t e) {
    fuzz::require(b < e && e <= body.size(), "a member outside the text");
    ++members;
    return true;
  });
  return 0;
}
