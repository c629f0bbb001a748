#pragma once
// Provider prompt-cache hints for Anthropic: marks the stable prefix of a Messages
// request with cache_control breakpoints so repeated prefixes are billed at the
// cached-input rate.
#include <cstdint>
#include <string>

#include "core/error.h"

namespace frugal {

struct BreakpointOptions {
  int64_t min_tokens = 1024;        // minimum cacheable prefix (Sonnet/Opus class)
  int64_t min_tokens_haiku = 2048;  // for models whose name contains "haiku"
  int64_t chars_per_token = 4;      // length estimate: chars / 4
  int max_breakpoints = 4;          // the provider's limit, client-set ones included
  std::string ttl;                  // "" (provider default, 5m) or e.g. "1h"
  // Also cache through the final user message (one-shot prompts over a large
  // document). Off by default: the final turn rarely repeats.
  bool include_final_user_message = false;
};

// Adds `"cache_control":{"type":"ephemeral"}` to up to three blocks of an Anthropic
// Messages request body, in this priority order while the budget lasts (budget =
// max_breakpoints minus the breakpoints the client already set):
//   1. the last content block of the longest stable message prefix (messages before
//      the last user message; a string content becomes one text block),
//   2. the last system block (a string system becomes one text block),
//   3. the last tool.
// A breakpoint is placed only where the whole prefix up to and including that block
// (tools, then system, then messages, measured as compact JSON characters /
// chars_per_token) reaches the model's minimum, and never on a block that already has
// cache_control or on a thinking block. Client breakpoints are never changed.
// On success returns the number added; the body is rewritten (compact JSON) only when
// that number is > 0. Invalid JSON or a non-object body is kInvalidRequest and leaves
// the body untouched.
Result<int> add_anthropic_cache_breakpoints(std::string& anthropic_request_json,
                                            const BreakpointOptions& options = {});

}  // namespace frugal
