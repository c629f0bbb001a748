#pragma once
// Budgets: spend limits per scope (team, key, request type, or global) per UTC hour,
// day or month, with a soft limit (log + count) and a hard limit (deny).
//
// Contract for the gateway: call reserve() with the request's estimated cost before
// routing it and deny with 429 when !allowed; call settle() with the same estimate and
// the request's real cost once it is known (cost 0 when it never reached an upstream).
// A hard limit is checked against spend so far plus what requests in flight have
// reserved: a request is admitted while spent + reserved < hard, so the request that
// crosses the limit is served and the next one is denied, and concurrent requests
// cannot all pass a check made before any of them was charged. Bound: the spend in a
// window stays below hard + the estimate of the last request admitted, plus whatever
// requests cost beyond their estimates (an escalated cascade, a missing max_tokens). State is in memory and per process;
// rebuild it on start from the ledger's rollups (router/ledger.h: restore_budgets).
// Thread-safe: one mutex, held for a few additions per call.
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "config/policy_config.h"
#include "core/money.h"

namespace frugal::policies {

// Wall-clock source, injected so tests control window rollover.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_us() const = 0;  // microseconds since the Unix epoch, UTC
};

class SystemClock final : public Clock {
 public:
  int64_t now_us() const override;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_us) : now_(now_us) {}
  int64_t now_us() const override { return now_; }
  void set(int64_t now_us) { now_ = now_us; }
  void advance(int64_t us) { now_ += us; }

 private:
  int64_t now_;
};

struct BudgetFacts {
  std::string_view team;
  std::string_view key;
  std::string_view request_type;
};

struct BudgetCheck {
  bool allowed = true;
  bool soft_exceeded = false;
  std::string message;  // empty when within every budget
  int64_t resets_at_us = 0;  // when denied: the end of the exhausted budget's window
};

struct BudgetStatus {
  std::string name;
  Money spent;  // exact (picodollars, 128-bit)
  Money reserved;  // estimates of requests in flight
  std::optional<Money> soft;
  std::optional<Money> hard;
  int64_t window_start_us = 0;
  int64_t window_end_us = 0;
  int64_t soft_exceeded_count = 0;  // checks that found the soft limit exceeded
  int64_t denied_count = 0;
};

// One in-scope budget of a request, in its current window: what a shared store
// (gateway/shared_state.h) needs to apply the same check across replicas.
struct BudgetScope {
  std::string name;
  std::optional<Money> soft;
  std::optional<Money> hard;
  int64_t window_start_us = 0;
  int64_t window_end_us = 0;
};

// [start, end) of the UTC hour/day/month containing t.
std::pair<int64_t, int64_t> budget_window(config::BudgetPeriod per, int64_t t_us);
// "2024-05-02T00:00:00Z"
std::string format_utc(int64_t t_us);

class BudgetTracker {
 public:
  BudgetTracker(std::vector<config::BudgetSpec> budgets, const Clock* clock);

  BudgetCheck check(const BudgetFacts& facts);
  void record(const BudgetFacts& facts, Money cost);
  // check(), and when allowed `estimate` is added to every in-scope budget's reserved
  // amount, under the same lock.
  BudgetCheck reserve(const BudgetFacts& facts, Money estimate);
  // Ends a reservation: releases `estimate` and records `cost` (same facts as reserve).
  void settle(const BudgetFacts& facts, Money estimate, Money cost);
  // The budgets that apply to `facts`, with their current windows (nothing reserved).
  std::vector<BudgetScope> scopes(const BudgetFacts& facts);
  // Counts a denial made elsewhere (the shared store) against the named budget.
  void count_denied(const std::string& name);
  // Adds spend recorded at `at_us` (e.g. an hourly rollup's start) if it falls in the
  // budget's current window. For rebuilding state from the ledger on start.
  void restore(const BudgetFacts& facts, int64_t at_us, Money cost);
  // The earliest current-window start over all budgets: restore from here to now.
  int64_t restore_from_us() const;

  std::vector<BudgetStatus> snapshot();
  bool empty() const { return budgets_.empty(); }

 private:
  struct Acc {
    config::BudgetSpec spec;
    Money spent;
    Money reserved;  // kept over a window roll: the requests are still in flight
    int64_t window_start = 0;
    int64_t window_end = 0;
    int64_t soft_count = 0;
    int64_t denied_count = 0;
  };
  static bool in_scope(const config::BudgetSpec& s, const BudgetFacts& f);
  void roll(Acc& a, int64_t now);
  BudgetCheck check_locked(const BudgetFacts& facts, int64_t now);

  std::vector<Acc> budgets_;
  const Clock* clock_;
  mutable std::mutex mu_;
};

}  // namespace frugal::policies
