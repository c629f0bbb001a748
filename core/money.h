#pragma once
// Money is an exact integer count of picodollars (1e-12 USD) end to end; floating point
// never touches a bill, and nothing is rounded between tokens and a monthly total.
// Prices are micro-dollars per 1M tokens, so tokens × price is exactly picodollars.
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace frugal {

__extension__ typedef __int128 int128_t;  // sums of picodollars need more than 63 bits
__extension__ typedef unsigned __int128 uint128_t;

inline constexpr int64_t kPicosPerMicro = 1'000'000;
inline constexpr int64_t kPicosPerUsd = 1'000'000'000'000;

// Not an aggregate: an amount is made with from_picos / from_micros, never a bare
// integer of unknown unit.
class Money {
 public:
  constexpr Money() = default;
  static constexpr Money from_picos(int128_t p) { return Money(p); }
  static constexpr Money from_micros(int64_t m) { return Money(static_cast<int128_t>(m) * kPicosPerMicro); }

  constexpr int128_t picos() const { return picos_; }
  // Rounded half away from zero to the micro-dollar: only for the legacy *_micros
  // fields of the JSON APIs (exact when the amount is a whole number of micro-dollars).
  int64_t micros_rounded() const;

  constexpr Money operator+(Money o) const { return Money(picos_ + o.picos_); }
  constexpr Money operator-(Money o) const { return Money(picos_ - o.picos_); }
  constexpr Money operator-() const { return Money(-picos_); }
  constexpr Money& operator+=(Money o) { picos_ += o.picos_; return *this; }
  constexpr Money& operator-=(Money o) { picos_ -= o.picos_; return *this; }
  constexpr auto operator<=>(const Money&) const = default;

  // The exact decimal in USD with at least six decimals, trailing zeros past the sixth
  // trimmed: "0.001234", "0.0000054", "-12.000000".
  std::string to_usd_string() const;
  // The picodollar count as a decimal integer ("5400000"): 128 bits do not fit a JSON
  // number, so APIs give it as a string.
  std::string picos_string() const;

 private:
  constexpr explicit Money(int128_t p) : picos_(p) {}
  int128_t picos_ = 0;
};

// Parses to_usd_string()'s form (or any "[-]D[.DDD]" with at most 12 decimals) and
// picos_string()'s. nullopt for anything else, or outside int128_t.
std::optional<Money> parse_usd(std::string_view text);
std::optional<Money> parse_picos(std::string_view text);

// Cost of `tokens` at `micros_per_million` micro-dollars per 1M tokens, exactly:
// tokens × micro-dollars per 1M = picodollars ($2.50/1M = 2'500'000; one token costs
// 2'500'000 picodollars).
constexpr Money price_tokens(int64_t tokens, int64_t micros_per_million) {
  return Money::from_picos(static_cast<int128_t>(tokens) * micros_per_million);
}

}  // namespace frugal
