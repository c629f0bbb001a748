#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "policies/budget.h"
#include "test_util.h"

using namespace frugal;
using namespace frugal::policies;

namespace {
constexpr int64_t kDay = 86'400'000'000;
constexpr int64_t kHour = 3'600'000'000;
constexpr int64_t kMay1 = 19'844 * kDay;  // 2024-05-01T00:00:00Z

std::vector<config::BudgetSpec> budgets() {
  auto pol = testing::example_policy();
  return pol->config().budgets;
}
}  // namespace

TEST_CASE("windows and UTC formatting") {
  CHECK(format_utc(kMay1 + 10 * kHour + 61'000'000) == "2024-05-01T10:01:01Z");
  CHECK(format_utc(0) == "1970-01-01T00:00:00Z");
  auto [hs, he] = budget_window(config::BudgetPeriod::kHour, kMay1 + 10 * kHour + 5);
  CHECK(hs == kMay1 + 10 * kHour);
  CHECK(he == kMay1 + 11 * kHour);
  auto [ds, de] = budget_window(config::BudgetPeriod::kDay, kMay1 + 10 * kHour);
  CHECK(ds == kMay1);
  CHECK(de == kMay1 + kDay);
  auto [ms, me] = budget_window(config::BudgetPeriod::kMonth, kMay1 + 20 * kDay);
  CHECK(ms == kMay1);
  CHECK(me == kMay1 + 31 * kDay);
  auto [fs, fe] = budget_window(config::BudgetPeriod::kMonth, 19'782 * kDay + kHour);  // 2024-02-29
  CHECK(format_utc(fs) == "2024-02-01T00:00:00Z");
  CHECK(format_utc(fe) == "2024-03-01T00:00:00Z");
  auto [ys, ye] = budget_window(config::BudgetPeriod::kMonth, 20'088 * kDay);  // 2024-12-31
  CHECK(format_utc(ys) == "2024-12-01T00:00:00Z");
  CHECK(format_utc(ye) == "2025-01-01T00:00:00Z");
}

TEST_CASE("soft then hard limit, scoped, with a clear message, and daily rollover") {
  ManualClock clock(kMay1 + 10 * kHour);
  BudgetTracker t(budgets(), &clock);
  const BudgetFacts search{"search", "key-1", "chat"};
  const BudgetFacts other{"ads", "key-2", "chat"};
  CHECK(t.check(search).allowed);
  CHECK(t.check(search).message.empty());
  t.record(search, Money::from_micros(50'000'000));
  BudgetCheck c = t.check(search);
  CHECK(c.allowed);
  CHECK(c.soft_exceeded);
  CHECK(c.message ==
        "budget 'team=search per day' over its soft limit: spent $50.000000 of $50.000000 soft limit; "
        "resets at 2024-05-02T00:00:00Z");
  t.record(search, Money::from_micros(29'999'999));
  CHECK(t.check(search).allowed);
  t.record(search, Money::from_micros(1));
  c = t.check(search);
  CHECK(!c.allowed);
  CHECK(c.message ==
        "budget 'team=search per day' exhausted: spent $80.000000 of $80.000000 hard limit; "
        "resets at 2024-05-02T00:00:00Z");
  CHECK(t.check(other).allowed);  // another team is unaffected
  auto snap = t.snapshot();
  CHECK(snap[0].spent == Money::from_micros(80'000'000));
  CHECK(snap[0].denied_count == 1);
  CHECK(snap[0].soft_exceeded_count == 2);
  CHECK(snap[1].spent == Money::from_micros(80'000'000));  // the global month budget saw it too
  clock.set(kMay1 + kDay);  // midnight UTC: the day window rolls over
  CHECK(t.check(search).allowed);
  CHECK(!t.check(search).soft_exceeded);
  CHECK(t.snapshot()[1].spent == Money::from_micros(80'000'000));  // the month has not rolled
}

TEST_CASE("the global hard limit denies everyone") {
  ManualClock clock(kMay1);
  BudgetTracker t(budgets(), &clock);
  t.record({"x", "k", "chat"}, Money::from_micros(10'000'000'000));
  CHECK(!t.check({"y", "k2", "extract"}).allowed);
  CHECK(t.check({"y", "k2", "extract"}).message.find("'global per month' exhausted") != std::string::npos);
}

TEST_CASE("restore adds only spend inside the current window") {
  ManualClock clock(kMay1 + 10 * kHour);
  BudgetTracker t(budgets(), &clock);
  CHECK(t.restore_from_us() == kMay1);  // the month window starts first
  t.restore({"search", "k", "chat"}, kMay1 + 9 * kHour, Money::from_micros(70'000'000));
  t.restore({"search", "k", "chat"}, kMay1 - kHour, Money::from_micros(5'000'000));  // yesterday: month only
  auto snap = t.snapshot();
  CHECK(snap[0].spent == Money::from_micros(70'000'000));
  CHECK(snap[1].spent == Money::from_micros(70'000'000));  // April 30 is outside May too
  t.restore({"search", "k", "chat"}, kMay1 + 3 * kHour, Money::from_micros(10'000'000));
  CHECK(!t.check({"search", "k", "chat"}).allowed);
}

TEST_CASE("concurrent record and check are consistent") {
  ManualClock clock(kMay1);
  BudgetTracker t(budgets(), &clock);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      for (int j = 0; j < 2'000; ++j) {
        t.record({"search", "k", "chat"}, Money::from_micros(1));
        (void)t.check({"search", "k", "chat"});
      }
    });
  for (auto& th : threads) th.join();
  CHECK(t.snapshot()[0].spent == Money::from_micros(8'000));
}

TEST_CASE("reservations: many concurrent requests against a small hard budget overshoot by at most one estimate") {
  ManualClock clock(kMay1);
  frugal::config::BudgetSpec spec;
  spec.name = "key=small per day";
  spec.key = "small";
  spec.per = frugal::config::BudgetPeriod::kDay;
  spec.hard = Money::from_micros(1'000);  // $0.001
  BudgetTracker t({spec}, &clock);
  const BudgetFacts facts{"", "small", "chat"};
  const Money estimate = Money::from_micros(140);  // what each request may cost at most
  const Money cost = Money::from_micros(120);      // what each one does cost
  // Every request reserves before any of them settles: without reservations all 64 would
  // pass a check against $0 spent and book 64 × 120 µ$ = 7.7x the budget.
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  std::vector<int> mine(64, 0);
  for (int i = 0; i < 64; ++i)
    threads.emplace_back([&, i] {
      if (t.reserve(facts, estimate).allowed) {
        mine[i] = 1;
        ++admitted;
      }
    });
  for (auto& th : threads) th.join();
  // Admitted while spent + reserved < hard: ceil(1000 / 140) = 8 requests.
  CHECK(admitted == 8);
  CHECK(t.snapshot()[0].reserved == Money::from_micros(8 * 140));
  const BudgetCheck denied = t.check(facts);
  CHECK(!denied.allowed);
  CHECK(denied.message.find("reserved by requests in flight") != std::string::npos);
  for (int i = 0; i < 64; ++i)
    if (mine[i]) t.settle(facts, estimate, cost);
  const auto s = t.snapshot()[0];
  CHECK(s.reserved == Money{});
  CHECK(s.spent == Money::from_micros(8 * 120));
  // The bound: spend < hard + one estimate (each request cost no more than its estimate).
  CHECK(s.spent < *spec.hard + estimate);
  // 960 µ$ < 1000: room for one more, whose reservation is released when it fails.
  CHECK(t.reserve(facts, estimate).allowed);
  t.settle(facts, estimate, Money{});
  CHECK(t.snapshot()[0].spent == Money::from_micros(960));
}
