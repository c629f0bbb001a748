#pragma once
// The Anthropic Messages API as a provider (`kind: anthropic`).
//
// Two modes, chosen per request:
//  - translation (an OpenAI-dialect request): the ChatRequest is encoded with the
//    dialect's openai_to_anthropic_request, and the response — JSON or SSE — is
//    translated back to canonical OpenAI bytes as it arrives (AnthropicToOpenAiStream:
//    every delta, tool-call arguments included, in the same pump that received it);
//    errors become the upstream's status with an OpenAI-shaped body. A request that
//    Anthropic cannot express is a 400 from the gateway (kGatewayErrorHeader).
//  - pass-through (ChatRequest::anthropic_body set, i.e. the client spoke Anthropic):
//    the client's body is sent with only `model` replaced and the Call relays the
//    provider's bytes unchanged (Call::dialect() == kAnthropic).
//
// Headers sent: `x-api-key` (the provider's api_key), `anthropic-version` (the
// client's, else the provider's `headers:` entry, else 2023-06-01), `anthropic-beta`
// (the provider's and the client's, comma-joined), the provider's other headers.
//
// Threading: as HttpClient — one io_context, one thread.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/dialect/openai_to_anthropic.h"
#include "backends/http/http_client.h"
#include "config/config.h"
#include "core/chat.h"

namespace frugal::http {

inline constexpr std::string_view kDefaultAnthropicVersion = "2023-06-01";

// `path` below the provider's API root ("/messages", "/messages/count_tokens"). The
// base URL is what ANTHROPIC_BASE_URL holds (https://api.anthropic.com); one that
// already ends in /v1 is accepted too.
std::string anthropic_url(const config::ProviderConfig& p, std::string_view path);

// A request to an Anthropic provider with the headers described above.
// `client_headers` are ChatRequest::upstream_headers (lower-case names).
// GET {base}/v1/models?limit=1000, with the provider's key and anthropic-version.
HttpRequest anthropic_models_request(const config::ProviderConfig& p);
HttpRequest anthropic_request(const config::ProviderConfig& p, std::string_view path, std::string body,
                              const std::vector<std::pair<std::string, std::string>>& client_headers,
                              bool stream);

// `json_object` (a JSON object text) with its top-level "model" value replaced by
// `model`; every other byte stays as it is. Falls back to re-serialising the members
// (values minified) in the odd case that the key is written with escapes.
Result<std::string> replace_model(std::string_view json_object, std::string_view model);

// Wraps a call to the Messages API. `translate`: present the canonical OpenAI dialect
// (`model` is the name written into translated responses); otherwise relay the bytes
// as they are, marked Dialect::kAnthropic. Works over any Call, so tests can feed
// it replayed bytes.
// What a translated call holds at most: a buffered answer, one SSE event.
struct AnswerLimits {
  size_t max_answer_bytes = 64u << 20;
  size_t max_sse_event_bytes = 1u << 20;
};
// `answer_tool`: response_format_tool of the request ("" for none).
std::shared_ptr<backends::Call> wrap_anthropic_call(std::shared_ptr<backends::Call> inner, std::string model,
                                                    bool translate, AnswerLimits limits = {},
                                                    std::string answer_tool = {});

class AnthropicBackend final : public backends::Backend {
 public:
  AnthropicBackend(HttpClient& client, config::ProviderConfig provider, AnthropicDefaults defaults = {})
      : client_(client), provider_(std::move(provider)), defaults_(defaults) {}
  std::shared_ptr<backends::Call> start(const ChatRequest& req, std::string_view model) override;

 private:
  HttpClient& client_;
  config::ProviderConfig provider_;
  AnthropicDefaults defaults_;
};

}  // namespace frugal::http
