#include "core/money.h"

namespace frugal {
namespace {

constexpr uint128_t kMaxMagnitude = static_cast<uint128_t>(1) << 127;  // of a negative amount

uint128_t magnitude(int128_t v) { return v < 0 ? uint128_t{0} - static_cast<uint128_t>(v) : static_cast<uint128_t>(v); }

// Decimal digits of `u` at the end of buf; returns the first digit. U: uint64_t where the
// value fits (128-bit division is a library call per digit) or uint128_t.
template <class U>
char* digits(U u, char* end) {
  char* p = end;
  do {
    *--p = static_cast<char>('0' + static_cast<int>(u % 10));
    u /= 10;
  } while (u != 0);
  return p;
}

std::optional<uint128_t> parse_digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint128_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9' || v > kMaxMagnitude / 10) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > kMaxMagnitude) return std::nullopt;
  }
  return v;
}

std::optional<Money> signed_picos(bool neg, uint128_t magnitude) {
  if (magnitude > kMaxMagnitude || (!neg && magnitude == kMaxMagnitude)) return std::nullopt;
  return Money::from_picos(neg ? static_cast<int128_t>(uint128_t{0} - magnitude) : static_cast<int128_t>(magnitude));
}

}  // namespace

int64_t Money::micros_rounded() const {
  const uint128_t a = magnitude(picos_);
  const uint128_t m = (a + kPicosPerMicro / 2) / kPicosPerMicro;
  // Saturates past ±2^63 micro-dollars (a legacy field; the exact one is a string).
  if (m > static_cast<uint128_t>(INT64_MAX)) return picos_ < 0 ? INT64_MIN : INT64_MAX;
  return picos_ < 0 ? -static_cast<int64_t>(m) : static_cast<int64_t>(m);
}

std::string Money::to_usd_string() const {
  // Formatted by hand: this runs for every response's headers.
  const uint128_t a = magnitude(picos_);
  char buf[64];
  char* end = buf + sizeof buf;
  // Below 2^64 picodollars (about $18M) 64-bit division does: 128-bit division is a
  // library call per digit.
  const bool small = a <= UINT64_MAX;
  uint64_t frac = small ? static_cast<uint64_t>(a) % static_cast<uint64_t>(kPicosPerUsd)
                        : static_cast<uint64_t>(a % kPicosPerUsd);
  int n = 12;  // decimals kept: trailing zeros past the sixth go
  while (n > 6 && frac % 10 == 0) {
    frac /= 10;
    --n;
  }
  for (int i = 0; i < n; ++i) {
    *--end = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  *--end = '.';
  char* p = small ? digits(static_cast<uint64_t>(a) / static_cast<uint64_t>(kPicosPerUsd), end)
                  : digits(a / kPicosPerUsd, end);
  if (picos_ < 0) *--p = '-';
  return std::string(p, buf + sizeof buf);
}

std::string Money::picos_string() const {
  char buf[48];
  char* p = digits(magnitude(picos_), buf + sizeof buf);
  if (picos_ < 0) *--p = '-';
  return std::string(p, buf + sizeof buf);
}

std::optional<Money> parse_picos(std::string_view text) {
  const bool neg = !text.empty() && text.front() == '-';
  if (neg) text.remove_prefix(1);
  auto v = parse_digits(text);
  if (!v) return std::nullopt;
  return signed_picos(neg, *v);
}

std::optional<Money> parse_usd(std::string_view text) {
  const bool neg = !text.empty() && text.front() == '-';
  if (neg) text.remove_prefix(1);
  const size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (frac.size() > 12 || (dot != std::string_view::npos && frac.empty())) return std::nullopt;
  auto w = parse_digits(whole);
  if (!w || *w > kMaxMagnitude / kPicosPerUsd) return std::nullopt;
  uint128_t f = 0;
  for (size_t i = 0; i < 12; ++i) {
    const char c = i < frac.size() ? frac[i] : '0';
    if (c < '0' || c > '9') return std::nullopt;
    f = f * 10 + static_cast<unsigned>(c - '0');
  }
  return signed_picos(neg, *w * kPicosPerUsd + f);
}

}  // namespace frugal
