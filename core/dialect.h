#pragma once
// The two client APIs frugal speaks, and the dialect of a backend call's bytes: always
// kOpenAi (the canonical form) except when an Anthropic client's request passes through
// to an Anthropic provider untouched.
namespace frugal {

enum class Dialect { kOpenAi, kAnthropic };

constexpr const char* dialect_name(Dialect d) { return d == Dialect::kAnthropic ? "anthropic" : "openai"; }

}  // namespace frugal
