#pragma once
// Money as the double OTLP carries (attributes, sums): read from its exact decimal text,
// so the value is the nearest double to what the ledger and the headers print.
#include <cstdlib>

#include "core/money.h"

namespace frugal::otlp {

inline double usd(const Money& m) { return std::strtod(m.to_usd_string().c_str(), nullptr); }

}  // namespace frugal::otlp
