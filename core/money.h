#pragma once
// Money is integer micro-dollars end to end; floating point never touches a bill.
#include <cstdint>
#include <string>

namespace frugal {

struct Money {
  int64_t micros = 0;

  static constexpr Money from_micros(int64_t m) { return Money{m}; }
  constexpr Money operator+(Money o) const { return Money{micros + o.micros}; }
  constexpr Money operator-(Money o) const { return Money{micros - o.micros}; }
  constexpr Money& operator+=(Money o) { micros += o.micros; return *this; }
  constexpr auto operator<=>(const Money&) const = default;

  // "0.001234" (USD, six decimals, exact).
  std::string to_usd_string() const;
};

// Cost of `tokens` at `micros_per_million` micro-dollars per 1M tokens, rounded half up
// to the micro-dollar. Prices are stored as micro-dollars per 1M tokens, so
// $2.50/1M = 2'500'000 and one token costs 2.5 micro-dollars.
__extension__ typedef __int128 int128_t;  // tokens × price can exceed 2^63

constexpr Money price_tokens(int64_t tokens, int64_t micros_per_million) {
  const int128_t num = static_cast<int128_t>(tokens) * micros_per_million;
  return Money{static_cast<int64_t>((num + 500'000) / 1'000'000)};
}

}  // namespace frugal
