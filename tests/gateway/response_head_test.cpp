// The response head's extra headers (gateway/session.cpp, append_header/append_headers).
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "gateway/worker.h"

using namespace frugal::gateway;

TEST_CASE("extra headers are appended as CRLF-led lines, line breaks dropped from values") {
  std::string head = "HTTP/1.1 200 OK";
  std::vector<std::pair<std::string_view, std::string>> headers{
      {"x-frugal-model", "gpt-4o-mini"},
      {"x-frugal-route", "evil\r\nSet-Cookie: a=b"},
      {"x-frugal-tier", ""},
      {"x-frugal-request-type", std::string(100, 'x') + "\n"}};  // a long one
  append_headers(head, headers);
  CHECK(head == "HTTP/1.1 200 OK\r\nx-frugal-model: gpt-4o-mini\r\nx-frugal-route: evilSet-Cookie: a=b"
                "\r\nx-frugal-tier: \r\nx-frugal-request-type: " +
                    std::string(100, 'x'));

  std::string one = "0";
  append_header(one, "x-frugal-cost-usd", "0.5\r");
  CHECK(one == "0\r\nx-frugal-cost-usd: 0.5");
  append_headers(one, {});
  CHECK(one == "0\r\nx-frugal-cost-usd: 0.5");
}
