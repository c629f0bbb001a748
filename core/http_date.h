#pragma once
// HTTP dates and Retry-After, without libcurl (router/ dispatch honours Retry-After and
// does not link the HTTP client).
#include <cstdint>
#include <optional>
#include <string_view>

namespace frugal {

// An HTTP-date (RFC 9110 §5.6.7): IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", and the
// obsolete RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994"
// forms, as Unix seconds. The weekday is not checked; the zone, if given, must be GMT or
// UTC. nullopt for anything else.
std::optional<int64_t> parse_http_date(std::string_view text);

// A Retry-After value, delta-seconds (a fraction is accepted) or an HTTP-date, as
// milliseconds from now_unix_s (0 for a date in the past); -1 if invalid.
int64_t parse_retry_after_ms(std::string_view value, int64_t now_unix_s);

}  // namespace frugal
