#include "policies/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <atomic>

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

struct ThreadMatchContext {
  pcre2_match_context* ctx = [] {
    pcre2_match_context* c = pcre2_match_context_create(nullptr);
    pcre2_set_match_limit(c, kMatchLimit);
    return c;
  }();
  ~ThreadMatchContext() { pcre2_match_context_free(ctx); }
};

pcre2_match_context* thread_match_context() {
  thread_local ThreadMatchContext t;
  return t.ctx;
}

std::atomic<uint64_t> g_limit_hits{0};
std::atomic<RegexLimitHandler> g_limit_handler{nullptr};

bool is_limit(int rc) {
  return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
         rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_NOMEMORY;
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
  const int rc = pcre2_match(code_->code, s, subject.size(), 0, 0, thread_match_data(), thread_match_context());
  if (rc >= 0) return true;
  if (is_limit(rc)) {
    g_limit_hits.fetch_add(1, std::memory_order_relaxed);
    if (RegexLimitHandler h = g_limit_handler.load(std::memory_order_acquire)) h(pattern_);
  }
  return false;
}

uint64_t regex_limit_hits() { return g_limit_hits.load(std::memory_order_relaxed); }

void set_regex_limit_handler(RegexLimitHandler handler) { g_limit_handler.store(handler, std::memory_order_release); }

}  // namespace frugal::policies
