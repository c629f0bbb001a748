#include "core/money.h"

#include <cstdio>
#include <cstdlib>

namespace frugal {

std::string Money::to_usd_string() const {
  char buf[32];
  const int64_t a = micros < 0 ? -micros : micros;
  std::snprintf(buf, sizeof buf, "%s%lld.%06lld", micros < 0 ? "-" : "",
                static_cast<long long>(a / 1'000'000), static_cast<long long>(a % 1'000'000));
  return buf;
}

}  // namespace frugal
