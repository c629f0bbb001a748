#include "policies/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace frugal::policies {

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

namespace {

// One match-data block per thread, big enough for a yes/no search (we never read groups).
struct ThreadMatchData {
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  ~ThreadMatchData() { pcre2_match_data_free(md); }
};

pcre2_match_data* thread_match_data() {
  thread_local ThreadMatchData t;
  return t.md;
}

}  // namespace

Result<Regex> Regex::compile(const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    return make_error(ErrorKind::kInvalidRequest,
                      "regex '" + pattern + "' does not compile at offset " + std::to_string(off) +
                          ": " + reinterpret_cast<const char*>(buf));
  }
  auto c = std::make_shared<Code>();
  c->code = code;
  c->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  Regex r;
  r.code_ = std::move(c);
  r.pattern_ = pattern;
  return r;
}

bool Regex::search(std::string_view subject) const {
  if (!code_) return false;
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  // pcre2_match runs the JIT code when there is some, and still checks the subject's
  // UTF-8 (pcre2_jit_match would not): invalid UTF-8 is a non-match, not UB.
  const int rc = pcre2_match(code_->code, s, subject.size(), 0, 0, thread_match_data(), nullptr);
  return rc >= 0;
}

}  // namespace frugal::policies
