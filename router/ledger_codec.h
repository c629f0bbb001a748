#pragma once
// The ledger's stored forms, as pure functions (no RocksDB): the row key and value, the
// hourly rollup key and value, and the rollup deltas a row contributes. Fuzzed
// (tests/fuzz/ledger_row). The writer is router/ledger.h, the readable JSON form
// router/ledger_json.h.
//
// Versions (the first byte of a value; every version ever written still decodes):
//  * row v4 (written): v3, then per tier (after its reason) the price source byte
//    (policies::PriceSource), and at the end the catalogue version (string), the
//    price-unknown byte, the shaping bits byte and the effective max_tokens (zigzag).
//  * row v3: binary, the fields in a fixed order as length-prefixed strings and
//    zigzag varints; money (tier costs, total, baseline, savings) in picodollars as zigzag
//    128-bit varints.
//  * row v2: the same with money in micro-dollars (×1e6 on decode).
//  * row v1: JSON, record_json's {"v":1,...} with money in micro-dollars; JSON v2 rows
//    (record_json's current form, money exact in *_usd) decode too.
//  * rollup value v3 (written): version byte, 12 int64 counters (v2's 11, then unpriced),
//    then cost and baseline as in v2.
//  * rollup value v2: version byte, 11 int64 counters (8 bytes LE each), then
//    cost and baseline in picodollars as 16-byte LE int128 (sums of a month stay exact).
//  * rollup value v1: version byte, then 8-byte LE int64 counters in the same order with
//    cost and baseline in micro-dollars (fewer when written by an older build: missing
//    ones are 0). merge_totals sums any mix of v1, v2 and v3 operands into v3.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "router/costs.h"
#include "router/ledger_record.h"

namespace frugal::router {

inline constexpr int64_t kLedgerHourUs = 3'600'000'000;
// The start of the UTC hour holding t (floor, also for negative t).
int64_t floor_hour(int64_t t_us);

std::string encode_record(const LedgerRecord& r);
void append_record(std::string& out, const LedgerRecord& r);  // encode_record into `out`
// Any stored version; rejects unknown versions, truncation and trailing bytes.
Result<LedgerRecord> decode_record(std::string_view bytes);

// Ledger key: 8-byte big-endian wall_us, then the request id (so keys sort by time).
std::string ledger_key(int64_t wall_us, std::string_view request_id);
void append_ledger_key(std::string& out, int64_t wall_us, std::string_view request_id);
// The wall_us of a ledger key (at least 8 bytes).
int64_t ledger_key_time(std::string_view key);

// Rollup key: 8-byte big-endian hour start (µs), then request_type, route, model, key,
// team, each as a 1..5-byte length varint and bytes.
struct RollupKey {
  int64_t hour_us = 0;
  std::string request_type, route, model, key, team;
};
std::string encode_rollup_key(const RollupKey& k);
void assign_rollup_key(std::string& out, int64_t hour_us, std::string_view request_type, std::string_view route,
                       std::string_view model, std::string_view key, std::string_view team);
std::optional<RollupKey> decode_rollup_key(std::string_view bytes);
// The seek key of the first rollup of the hour holding from_us.
std::string rollup_seek_key(int64_t from_us);

std::string encode_totals(const CostTotals& t);
// nullopt: not a rollup value of a known version.
std::optional<CostTotals> decode_totals(std::string_view bytes);
// The merge operator's step: existing (may be absent) + operand, as a v3 value;
// nullopt when either is malformed.
std::optional<std::string> merge_totals(const std::string_view* existing, std::string_view operand);

// A record's rollup deltas per model (the tiers' models and the answer's), in first-seen
// order, the models pointing into the record. Attribution: see CostTotals.
std::vector<std::pair<const std::string*, CostTotals>> model_deltas(const LedgerRecord& r);
std::vector<std::pair<RollupKey, CostTotals>> rollup_deltas(const LedgerRecord& r);

}  // namespace frugal::router
