#pragma once
// A compiled PCRE2 pattern (JIT where available), matched without allocating:
// each thread reuses one match-data block. Immutable after construction, so one
// Regex may be used from many threads at once.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"

namespace frugal::policies {

class Regex {
 public:
  // UTF-8 pattern in PCRE2 syntax; `(?i)` and friends work. Unanchored search.
  static Result<Regex> compile(const std::string& pattern);

  // False on no match, and also when the match gives up at PCRE2's limits (kMatchLimit
  // backtracking steps, the JIT stack, the depth or heap limit): a pathological pattern
  // such as (a+)+$ on "aaa…ab" counts as no match. Such give-ups are counted
  // (regex_limit_hits()) and reported to the handler set by set_regex_limit_handler().
  bool search(std::string_view subject) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

// Backtracking steps one search may take (PCRE2's match limit; its default is 10^7).
inline constexpr uint32_t kMatchLimit = 1'000'000;

// Searches that gave up at a PCRE2 limit, since start (all patterns, all threads).
uint64_t regex_limit_hits();
// Called (on the searching thread, after the count) for each give-up, with the pattern;
// must be cheap and thread-safe. nullptr: none. The gateway logs them, rate-limited.
using RegexLimitHandler = void (*)(const std::string& pattern);
void set_regex_limit_handler(RegexLimitHandler handler);

}  // namespace frugal::policies
