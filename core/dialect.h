#pragma once
// The client APIs frugal speaks, and the dialect of a backend call's bytes: always
// kOpenAi (the canonical form) except when an Anthropic client's request passes through
// to an Anthropic provider untouched. kResponses (the OpenAI Responses API) is a client
// dialect only: its requests are translated to the canonical form.
namespace frugal {

enum class Dialect { kOpenAi, kAnthropic, kResponses };

constexpr const char* dialect_name(Dialect d) {
  switch (d) {
    case Dialect::kAnthropic: return "anthropic";
    case Dialect::kResponses: return "responses";
    case Dialect::kOpenAi: break;
  }
  return "openai";
}

}  // namespace frugal
