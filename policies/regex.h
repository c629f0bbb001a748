#pragma once
// A compiled PCRE2 pattern (JIT where available), matched without allocating:
// each thread reuses one match-data block. Immutable after construction, so one
// Regex may be used from many threads at once.
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"

namespace frugal::policies {

class Regex {
 public:
  // UTF-8 pattern in PCRE2 syntax; `(?i)` and friends work. Unanchored search.
  static Result<Regex> compile(const std::string& pattern);

  bool search(std::string_view subject) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

}  // namespace frugal::policies
