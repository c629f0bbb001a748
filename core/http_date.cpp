#include "core/http_date.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

namespace frugal {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146'097 + static_cast<int64_t>(doe) - 719'468;
}

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr std::array<unsigned, 12> k{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : k[m - 1];
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

int to_int(std::string_view s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] + 32) : a[i];
    const char y = (b[i] >= 'A' && b[i] <= 'Z') ? static_cast<char>(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}

int month_of(std::string_view s) {
  static constexpr std::array<std::string_view, 12> k{"jan", "feb", "mar", "apr", "may", "jun",
                                                      "jul", "aug", "sep", "oct", "nov", "dec"};
  for (size_t i = 0; i < k.size(); ++i)
    if (iequals(s, k[i])) return static_cast<int>(i) + 1;
  return 0;
}

bool is_weekday(std::string_view s) {
  static constexpr std::array<std::string_view, 7> k3{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  static constexpr std::array<std::string_view, 7> full{"monday", "tuesday", "wednesday", "thursday",
                                                        "friday", "saturday", "sunday"};
  for (size_t i = 0; i < 7; ++i)
    if (iequals(s, k3[i]) || iequals(s, full[i])) return true;
  return false;
}

}  // namespace

std::optional<int64_t> parse_http_date(std::string_view text) {
  // Tokens split on spaces, commas and (RFC 850's) dashes; every form is then a weekday,
  // a month name, a day, a year and an hh:mm:ss time in some order, and an optional zone.
  std::vector<std::string_view> tokens;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',' || text[i] == '-' || text[i] == '\t')) ++i;
    const size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != ',' && text[i] != '-' && text[i] != '\t') ++i;
    if (i > start) tokens.push_back(text.substr(start, i - start));
  }
  int month = 0, day = -1, hh = -1, mm = -1, ss = -1;
  int64_t year = -1;
  bool weekday = false, zone = false;
  for (std::string_view t : tokens) {
    if (!weekday && is_weekday(t)) weekday = true;
    else if (!month && month_of(t)) month = month_of(t);
    else if (!zone && (iequals(t, "GMT") || iequals(t, "UTC"))) zone = true;
    else if (hh < 0 && t.size() == 8 && t[2] == ':' && t[5] == ':' && all_digits(t.substr(0, 2)) &&
             all_digits(t.substr(3, 2)) && all_digits(t.substr(6, 2))) {
      hh = to_int(t.substr(0, 2));
      mm = to_int(t.substr(3, 2));
      ss = to_int(t.substr(6, 2));
    } else if (day < 0 && all_digits(t) && t.size() <= 2) {  // the day comes before the year in every form
      day = to_int(t);
    } else if (year < 0 && all_digits(t) && (t.size() == 4 || t.size() == 2)) {
      year = to_int(t);
      if (t.size() == 2) year += year < 70 ? 2000 : 1900;  // RFC 850's two-digit years
    } else {
      return std::nullopt;
    }
  }
  if (!month || day < 1 || year < 0 || hh < 0 || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  if (static_cast<unsigned>(day) > days_in_month(year, static_cast<unsigned>(month))) return std::nullopt;
  return days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86'400 + hh * 3'600 +
         mm * 60 + ss;
}

int64_t parse_retry_after_ms(std::string_view value, int64_t now_unix_s) {
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  if (value.empty()) return -1;
  if ((value[0] >= '0' && value[0] <= '9') || value[0] == '.') {
    double secs = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ec == std::errc() && end == value.data() + value.size()) {
      if (!std::isfinite(secs) || secs < 0) return -1;
      constexpr double kMaxSecs = 1e12;  // far past any retry budget; keeps the cast defined
      return static_cast<int64_t>(std::min(secs, kMaxSecs) * 1000);
    }
  }
  const auto t = parse_http_date(value);
  if (!t) return -1;
  return *t <= now_unix_s ? 0 : (*t - now_unix_s) * 1000;
}

}  // namespace frugal
