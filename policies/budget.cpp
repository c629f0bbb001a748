#include "policies/budget.h"

#include <chrono>
#include <cstdio>

namespace frugal::policies {
namespace {

constexpr int64_t kHourUs = 3'600'000'000;
constexpr int64_t kDayUs = 24 * kHourUs;

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Days since 1970-01-01 of a proleptic Gregorian date, and back (the classic
// era-based conversion: 400-year eras of 146097 days, years starting in March).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = floor_div(y, 400);
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = floor_div(z, 146097);
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
}

std::string usd(Money m) {
  std::string s = "$";  // (not "$" + str: GCC 12 -O3 raises a false -Wrestrict on it)
  s += m.to_usd_string();
  return s;
}

}  // namespace

int64_t SystemClock::now_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::pair<int64_t, int64_t> budget_window(config::BudgetPeriod per, int64_t t) {
  switch (per) {
    case config::BudgetPeriod::kHour: {
      const int64_t s = floor_div(t, kHourUs) * kHourUs;
      return {s, s + kHourUs};
    }
    case config::BudgetPeriod::kDay: {
      const int64_t s = floor_div(t, kDayUs) * kDayUs;
      return {s, s + kDayUs};
    }
    case config::BudgetPeriod::kMonth: {
      int64_t y;
      unsigned m, d;
      civil_from_days(floor_div(t, kDayUs), y, m, d);
      const int64_t s = days_from_civil(y, m, 1) * kDayUs;
      const int64_t e = (m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1)) * kDayUs;
      return {s, e};
    }
  }
  return {t, t};
}

std::string format_utc(int64_t t_us) {
  const int64_t days = floor_div(t_us, kDayUs);
  const int64_t secs = floor_div(t_us - days * kDayUs, 1'000'000);
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", static_cast<long long>(y), m, d,
                static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60));
  return buf;
}

BudgetTracker::BudgetTracker(std::vector<config::BudgetSpec> budgets, const Clock* clock)
    : clock_(clock) {
  const int64_t now = clock_->now_us();
  for (auto& b : budgets) {
    Acc a;
    a.spec = std::move(b);
    std::tie(a.window_start, a.window_end) = budget_window(a.spec.per, now);
    budgets_.push_back(std::move(a));
  }
}

bool BudgetTracker::in_scope(const config::BudgetSpec& s, const BudgetFacts& f) {
  return (!s.team || *s.team == f.team) && (!s.key || *s.key == f.key) &&
         (!s.request_type || *s.request_type == f.request_type);
}

void BudgetTracker::roll(Acc& a, int64_t now) {
  if (now >= a.window_start && now < a.window_end) return;
  std::tie(a.window_start, a.window_end) = budget_window(a.spec.per, now);
  a.spent = Money{};
}

BudgetCheck BudgetTracker::check(const BudgetFacts& facts) {
  const int64_t now = clock_->now_us();
  std::lock_guard lock(mu_);
  return check_locked(facts, now);
}

BudgetCheck BudgetTracker::reserve(const BudgetFacts& facts, Money estimate) {
  const int64_t now = clock_->now_us();
  std::lock_guard lock(mu_);
  BudgetCheck c = check_locked(facts, now);
  if (!c.allowed) return c;
  for (auto& a : budgets_)
    if (in_scope(a.spec, facts)) a.reserved += estimate;
  return c;
}

void BudgetTracker::settle(const BudgetFacts& facts, Money estimate, Money cost) {
  const int64_t now = clock_->now_us();
  std::lock_guard lock(mu_);
  for (auto& a : budgets_) {
    if (!in_scope(a.spec, facts)) continue;
    roll(a, now);
    a.reserved -= estimate;
    if (a.reserved < Money{}) a.reserved = Money{};
    a.spent += cost;
  }
}

BudgetCheck BudgetTracker::check_locked(const BudgetFacts& facts, int64_t now) {
  BudgetCheck c;
  for (auto& a : budgets_) {
    if (!in_scope(a.spec, facts)) continue;
    roll(a, now);
    if (a.spec.hard && a.spent + a.reserved >= *a.spec.hard) {
      ++a.denied_count;
      c.allowed = false;
      c.message = "budget '" + a.spec.name + "' exhausted: spent " + usd(a.spent) +
                  (a.reserved != Money{} ? " (+" + usd(a.reserved) + " reserved by requests in flight)" : "") +
                  " of " + usd(*a.spec.hard) + " hard limit; resets at " + format_utc(a.window_end);
      c.resets_at_us = a.window_end;
      return c;  // the first exhausted budget is the one reported
    }
    if (a.spec.soft && a.spent >= *a.spec.soft) {
      ++a.soft_count;
      c.soft_exceeded = true;
      if (c.message.empty())
        c.message = "budget '" + a.spec.name + "' over its soft limit: spent " + usd(a.spent) + " of " +
                    usd(*a.spec.soft) + " soft limit; resets at " + format_utc(a.window_end);
    }
  }
  return c;
}

std::vector<BudgetScope> BudgetTracker::scopes(const BudgetFacts& facts) {
  const int64_t now = clock_->now_us();
  std::lock_guard lock(mu_);
  std::vector<BudgetScope> out;
  for (auto& a : budgets_) {
    if (!in_scope(a.spec, facts)) continue;
    roll(a, now);
    out.push_back(BudgetScope{a.spec.name, a.spec.soft, a.spec.hard, a.window_start, a.window_end});
  }
  return out;
}

void BudgetTracker::count_denied(const std::string& name) {
  std::lock_guard lock(mu_);
  for (auto& a : budgets_)
    if (a.spec.name == name) ++a.denied_count;
}

void BudgetTracker::record(const BudgetFacts& facts, Money cost) {
  const int64_t now = clock_->now_us();
  std::lock_guard lock(mu_);
  for (auto& a : budgets_) {
    if (!in_scope(a.spec, facts)) continue;
    roll(a, now);
    a.spent += cost;
  }
}

void BudgetTracker::restore(const BudgetFacts& facts, int64_t at_us, Money cost) {
  const int64_t now = clock_->now_us();
  std::lock_guard lock(mu_);
  for (auto& a : budgets_) {
    if (!in_scope(a.spec, facts)) continue;
    roll(a, now);
    if (at_us >= a.window_start && at_us < a.window_end) a.spent += cost;
  }
}

int64_t BudgetTracker::restore_from_us() const {
  const int64_t now = clock_->now_us();
  int64_t from = now;
  for (const auto& a : budgets_) from = std::min(from, budget_window(a.spec.per, now).first);
  return from;
}

std::vector<BudgetStatus> BudgetTracker::snapshot() {
  const int64_t now = clock_->now_us();
  std::lock_guard lock(mu_);
  std::vector<BudgetStatus> out;
  for (auto& a : budgets_) {
    roll(a, now);
    out.push_back(BudgetStatus{a.spec.name, a.spent, a.reserved, a.spec.soft, a.spec.hard,
                               a.window_start, a.window_end, a.soft_count, a.denied_count});
  }
  return out;
}

}  // namespace frugal::policies
