#include "core/http_date.h"

#include <doctest/doctest.h>

using namespace frugal;

TEST_CASE("HTTP dates in the three forms of RFC 9110 parse to the same Unix time") {
  constexpr int64_t k = 784'111'777;  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == k);
  CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == k);
  CHECK(parse_http_date("Sun Nov  6 08:49:37 1994") == k);
  CHECK(parse_http_date("sun, 06 nov 1994 08:49:37 utc") == k);
  CHECK(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT") == 0);
  CHECK(parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT") == 1'835'481'599);
  CHECK(parse_http_date("Sat, 01 Jan 2000 00:00:00 GMT") == 946'684'800);
  CHECK(parse_http_date("Fri, 01-Jan-21 00:00:00 GMT") == 1'609'459'200);  // two-digit year
  for (const char* bad : {"", "soon", "Sun, 06 Nov 1994", "Sun, 32 Nov 1994 08:49:37 GMT",
                          "Sun, 29 Feb 2027 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                          "Sun, 06 Nov 1994 08:49:37 PST", "Sun, 06 Foo 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49 GMT", "06 Nov 1994 08:49:37 GMT extra"})
    CHECK_MESSAGE(!parse_http_date(bad), bad);
}

TEST_CASE("Retry-After: delta-seconds or an HTTP-date, in milliseconds from now") {
  constexpr int64_t now = 784'111'777;
  CHECK(parse_retry_after_ms("120", now) == 120'000);
  CHECK(parse_retry_after_ms("0.1", now) == 100);
  CHECK(parse_retry_after_ms(" 2 ", now) == 2'000);
  CHECK(parse_retry_after_ms("0", now) == 0);
  CHECK(parse_retry_after_ms("Sun, 06 Nov 1994 08:49:47 GMT", now) == 10'000);
  CHECK(parse_retry_after_ms("Sun, 06 Nov 1994 08:49:00 GMT", now) == 0);  // in the past
  CHECK(parse_retry_after_ms("1e400", now) == -1);  // out of range
  CHECK(parse_retry_after_ms("99999999999999999999", now) == 1'000'000'000'000'000);  // capped, defined
  for (const char* bad : {"", "  ", "-1", "soon", "12abc", "inf", "nan"})
    CHECK_MESSAGE(parse_retry_after_ms(bad, now) == -1, bad);
}
