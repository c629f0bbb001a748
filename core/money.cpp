#include "core/money.h"

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace frugal {

std::string Money::to_usd_string() const {
  // "[-]D.DDDDDD", formatted by hand: this runs several times per request.
  const uint64_t a = micros < 0 ? 0 - static_cast<uint64_t>(micros) : static_cast<uint64_t>(micros);
  char buf[32];
  char* p = buf;
  if (micros < 0) *p++ = '-';
  p = std::to_chars(p, buf + sizeof buf, a / 1'000'000).ptr;
  *p++ = '.';
  uint64_t frac = a % 1'000'000;
  for (int i = 5; i >= 0; --i) {
    p[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  return std::string(buf, p + 6);
}

}  // namespace frugal
