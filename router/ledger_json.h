#pragma once
// The readable JSON form of a ledger row: what GET /v1/frugal/ledger returns, and the
// stored form of rows written before the binary rows (v1).
//
// {"v":3,...}: money as "cost"/"baseline"/"savings" (and each tier's "cost") in
// micro-dollars rounded half away from zero (JSON integers, for older readers), and
// exactly as "cost_usd"/"baseline_usd"/"savings_usd" (decimal strings, "0.0000054");
// each tier's "price" (none | policy | catalogue | unknown), "catalogue_version",
// "price_unknown", and "shaping": {"applied":["max_tokens_default",...],"max_tokens":N}.
#include <string>
#include <string_view>

#include "core/error.h"
#include "router/ledger_record.h"

namespace frugal::router {

std::string record_json(const LedgerRecord& r);
// {"v":1} (micro-dollars), {"v":2} (the *_usd fields) or {"v":3}; anything else is an error.
Result<LedgerRecord> record_from_json(std::string_view json);

}  // namespace frugal::router
