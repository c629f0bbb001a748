#include "gateway/regex_limit_log.h"

#include <string>

#include "core/log_throttle.h"
#include "core/log.h"
#include "policies/regex.h"

namespace frugal::gateway {
namespace {

void log_limit_hit(const std::string& pattern) {
  static LogThrottle throttle(std::chrono::seconds(10), 1);
  if (!throttle.admit()) return;
  std::string shown = pattern.size() > 200 ? pattern.substr(0, 200) + "..." : pattern;
  log::warn("policy: regex '" + shown + "' gave up at PCRE2's match limit and counted as no match (" +
            std::to_string(policies::regex_limit_hits()) + " such searches since start)");
}

}  // namespace

void install_regex_limit_log() { policies::set_regex_limit_handler(&log_limit_hit); }

}  // namespace frugal::gateway
