#pragma once
// Logs policy regex searches that gave up at PCRE2's limits and so counted as no match
// (policies/regex.h): at most one line per 10 s, naming the pattern and the count.

namespace frugal::gateway {

void install_regex_limit_log();

}  // namespace frugal::gateway
