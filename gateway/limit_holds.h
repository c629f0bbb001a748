#pragma once
// What a chat request holds against its limits while it runs: budget reservations
// (one per tracker that applies: the policy's budgets, the key's own budget), the
// rpm/tpm scopes its tokens are charged to, and its place among the key's concurrent
// streams. Released when the exchange ends, whatever way it ends: a budget
// reservation is settled at the real cost by settle(), or released at no cost when
// the request never got that far (refused, failed, client gone). With shared_state
// the reservation lives in Redis; the tracker keeps this replica's own view.
// Owned by the exchange's RouteState; used on its worker's thread.
#include <memory>
#include <string>
#include <vector>

#include "core/money.h"
#include "gateway/keys.h"
#include "gateway/shared_state.h"
#include "policies/budget.h"
#include "policies/rate_limit.h"

namespace frugal::gateway {

struct LimitHolds {
  struct Budget {
    std::shared_ptr<policies::BudgetTracker> tracker;
    Money estimate;
    SharedState* shared = nullptr;  // set: the reservation is held in Redis
    std::string reservation;        // its id there
  };
  LimitHolds() = default;
  LimitHolds(const LimitHolds&) = delete;
  LimitHolds& operator=(const LimitHolds&) = delete;
  ~LimitHolds() {
    settle(Money{});
    if (stream_of) stream_of->streams.fetch_sub(1, std::memory_order_relaxed);
  }

  // Every reservation ends at `cost` (each tracker records the request's cost; a
  // shared one also in Redis, queued: the request path does not wait for it).
  void settle(Money cost) {
    for (auto& b : budgets) {
      if (!b.shared) {
        b.tracker->settle(facts(), b.estimate, cost);
        continue;
      }
      b.tracker->record(facts(), cost);
      b.shared->settle_budget(b.tracker->scopes(facts()), b.reservation, cost);
    }
    budgets.clear();
  }
  policies::BudgetFacts facts() const { return {team, key, request_type}; }

  // Copies: the trace they came from is destroyed before the holds.
  std::string team, key, request_type;
  std::vector<Budget> budgets;
  std::vector<policies::RateScope> rate_scopes;
  std::shared_ptr<KeyRuntime> stream_of;  // set while the request counts as a stream of this key
};

}  // namespace frugal::gateway
