#pragma once
// The request vocabulary shared by every layer: an OpenAI-style chat request, parsed
// and validated once. Dialect codecs (gateway/) decode into it; providers (backends/)
// encode from it. Fields the gateway does not understand are never dropped: the
// parsed document stays reachable through `root` for pass-through re-encoding.
#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace frugal {

struct EmbeddingsInput;  // core/embeddings.h

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as the model produced it
};

struct ContentPart {
  enum class Kind { kText, kImage, kOther };
  Kind kind = Kind::kText;
  std::string text;       // kText
  std::string image_url;  // kImage: URL or data: URI
  std::string detail;     // kImage: low|high|auto
  std::string raw_json;   // kOther: the part as received
};

struct Message {
  std::string role;  // system, developer, user, assistant, tool
  std::vector<ContentPart> parts;
  bool content_is_string = false;  // content was a JSON string (one text part)
  std::string name;
  std::vector<ToolCall> tool_calls;
  std::string tool_call_id;

  std::string text() const;  // all text parts concatenated
};

struct ToolDef {
  std::string name;
  std::string description;
  std::string parameters_json;  // JSON Schema text, "" if absent
};

struct SamplingParams {
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<double> presence_penalty;
  std::optional<double> frequency_penalty;
  std::optional<int64_t> seed;
  std::optional<int64_t> max_tokens;  // max_tokens or max_completion_tokens
  std::optional<int64_t> n;
  std::optional<int64_t> top_logprobs;
  bool logprobs = false;
  std::vector<std::string> stop;
};

struct ChatRequest {
  std::string model;
  std::vector<Message> messages;
  std::vector<ToolDef> tools;
  std::string tool_choice_json;      // raw JSON, "" if absent
  std::string response_format_json;  // raw JSON, "" if absent
  SamplingParams sampling;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string user;

  // The parsed document; valid while the parser that produced it is alive and unused.
  simdjson::dom::object root;
  bool has_root = false;  // false for requests built by hand (no document to consult)
  // The OpenAI body `root` was parsed from (parse_chat_body), so an OpenAI-compatible
  // backend can forward it with only `model` replaced. Must outlive the dispatch.
  std::string_view openai_body;

  // Set by the Anthropic codec when the client spoke the Messages API: the client's
  // body as received. An Anthropic backend forwards it (only `model` replaced) instead
  // of encoding the fields above, so `cache_control` and fields the gateway does not
  // model reach Anthropic untouched, and its Call then yields native Anthropic bytes
  // (backends::Call::dialect()). Other backends ignore it. Must outlive the dispatch.
  std::string_view anthropic_body;
  // The client's `metadata` object when the body sent upstream does not carry it (the
  // Responses API: chat completions refuse `metadata` without `store`). Policy metadata
  // matchers read it from here when set, else from `root`. Valid as long as `root`.
  std::optional<simdjson::dom::object> client_metadata;
  // Client request headers that a backend of the matching kind forwards upstream, with
  // lower-case names: `anthropic-version` and `anthropic-beta` for Anthropic providers.
  std::vector<std::pair<std::string, std::string>> upstream_headers;
  // Set by the gateway when the route enables provider prompt caching: an Anthropic
  // backend then marks the stable prefix with cache_control breakpoints.
  bool auto_prompt_cache = false;
  // The request's reasoning_effort is a route's default (router/output_shaping.h), not the
  // client's: a provider without the parameter (Anthropic) leaves it out instead of
  // refusing the request.
  bool route_reasoning_effort = false;
  // How many frugal gateways this request already passed (the incoming x-frugal-hop).
  // Every upstream request carries one more (frugal_hop_header), so that a gateway
  // whose upstream is itself, or another gateway that leads back to it, sees the loop.
  int frugal_hop = 0;
  // W3C traceparent an HTTP backend sends upstream (the cascade sets it per tier, naming
  // the tier's span); "" for none.
  std::string traceparent;
  // Set for POST /v1/embeddings (core/embeddings.h): the request asks for vectors, not a
  // completion; `messages` is empty.
  std::shared_ptr<const EmbeddingsInput> embeddings;
};

inline constexpr std::string_view kFrugalHopHeader = "x-frugal-hop";
// A request that arrives having passed this many gateways is in a loop (508).
inline constexpr int kMaxFrugalHops = 2;
// The header line an upstream request of `req` carries.
inline std::string frugal_hop_header(int incoming_hop) {
  return std::string(kFrugalHopHeader) + ": " + std::to_string(incoming_hop + 1);
}

// Validates an OpenAI /v1/chat/completions body. Errors are kInvalidRequest with
// `param` naming the field (e.g. "messages[2].role").
Result<ChatRequest> parse_chat_request(simdjson::dom::element root);

// Parses `body` with `parser` (which must outlive the returned request's `root`).
// Malformed JSON and a non-object top level are kInvalidRequest.
Result<ChatRequest> parse_chat_body(simdjson::dom::parser& parser, std::string_view body);

// Compact JSON text of a parsed element.
std::string to_json(simdjson::dom::element e);

}  // namespace frugal
