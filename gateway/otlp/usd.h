#pragma once
// Money as the double OTLP carries (attributes, sums): the nearest double to its exact
// decimal value, i.e. to what the ledger and the headers print.
#include <cstdlib>

#include "core/money.h"

namespace frugal::otlp {

inline double usd(const Money& m) {
  // Below 2^53 picodollars (about $9000) the count is exact as a double and so is 1e12:
  // one IEEE division rounds the exact quotient to nearest, as strtod of the exact
  // decimal text does.
  constexpr int128_t kExact = int128_t{1} << 53;
  const int128_t p = m.picos();
  if (p > -kExact && p < kExact) return static_cast<double>(static_cast<int64_t>(p)) / 1e12;
  return std::strtod(m.to_usd_string().c_str(), nullptr);
}

}  // namespace frugal::otlp
