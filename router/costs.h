#pragma once
// Cost reports over the ledger's hourly rollups, and their renderers for
// `GET /v1/frugal/costs?from=&to=&group_by=` (JSON) and the `frugal costs` CLI (table).
// Pure functions and plain structs; the query itself is Ledger::query (ledger.h).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/money.h"

namespace frugal::router {

enum class GroupBy { kHour, kRequestType, kRoute, kModel, kKey, kTeam };

const char* group_by_name(GroupBy g);
// "request_type,model" -> {kRequestType, kModel}; unknown names are kInvalidRequest
// with param "group_by". Empty text -> no grouping (one row of totals).
Result<std::vector<GroupBy>> parse_group_by(std::string_view csv);

// Sums for one group. Attribution: every tier attempt counts toward its own model
// (attempts, tokens, cost), a verifier call toward the verifier model (tokens and cost,
// not an attempt); the request itself (requests, cache hits, baseline) counts toward
// the model that answered ("(cache)" for a cache hit). So per-model rows add up to the overall totals, and
// savings = baseline − cost holds for every row and for the sum.
struct CostTotals {
  int64_t requests = 0;
  int64_t attempts = 0;  // tiers tried
  int64_t accepted = 0;
  int64_t rejected = 0;
  int64_t errors = 0;
  int64_t cache_hits = 0;
  int64_t input_tokens = 0;  // all prompt tokens, cached and cache-write included
  int64_t cached_input_tokens = 0;
  int64_t cache_write_5m_tokens = 0;
  int64_t cache_write_1h_tokens = 0;
  int64_t output_tokens = 0;
  // Tier attempts and verifier calls whose model had no price (booked at 0: `cost` is
  // then a lower bound). Counted toward the unpriced model.
  int64_t unpriced = 0;
  Money cost;      // exact, summed in 128 bits
  Money baseline;

  Money savings() const { return baseline - cost; }
  CostTotals& operator+=(const CostTotals& o);
  bool operator==(const CostTotals&) const = default;
};

struct CostRow {
  std::vector<std::string> group;  // one value per group_by entry, same order
  CostTotals totals;
};

struct CostReport {
  int64_t from_us = 0;  // as asked; rows cover whole hours starting in [floor_hour(from), to)
  int64_t to_us = 0;
  std::vector<GroupBy> group_by;
  std::vector<CostRow> rows;  // sorted by group values
  CostTotals totals;
};

// {"from":"...Z","to":"...Z","group_by":[...],"rows":[{"request_type":"classify",...,
//  "requests":3,...,"cost_usd":"0.001234","baseline_usd":"...","savings_usd":"..."}],
//  "totals":{...}}. Money, exactly: *_usd decimal strings (at least six decimals,
//  "0.0000054"), *_picos integer strings (1e-12 USD); *_micros are JSON integers
//  rounded half away from zero to the micro-dollar, kept for older clients.
std::string render_costs_json(const CostReport& report);
// A fixed-width text table with a header line and a TOTAL line.
std::string render_costs_table(const CostReport& report);

}  // namespace frugal::router
