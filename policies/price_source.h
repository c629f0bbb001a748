#pragma once
// Who priced a tier: apart from prices.h so that plain records (router/ledger_record.h)
// can name it without the price table.
#include <cstdint>

namespace frugal::policies {

// Stored in ledger rows: the values are fixed.
enum class PriceSource : uint8_t {
  kNone = 0,       // nothing to price (no tokens used)
  kPolicy = 1,     // the policy's `prices:`
  kCatalogue = 2,  // the built-in catalogue (its version is on the row)
  kUnknown = 3,    // tokens were used but no price is known: counted as 0
};
inline constexpr uint8_t kMaxPriceSource = 3;
const char* price_source_name(PriceSource s);  // none | policy | catalogue | unknown

}  // namespace frugal::policies
