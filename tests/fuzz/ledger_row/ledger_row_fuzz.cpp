// Stored ledger rows read back (router/ledger_codec.h): a value from the `ledger` column
// family, binary (v4, v3, v2) or JSON (v3, v2, v1), must decode or be rejected, never crash; a
// decoded row must survive the binary round trip and render as valid JSON
// (/v1/frugal/ledger) that decodes to the same row. The same bytes as a rollup key and a
// rollup value (v1, v2 or v3), merged with itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "router/ledger_codec.h"
#include "router/ledger_json.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal;
  using namespace frugal::router;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  auto row = decode_record(bytes);
  fuzz::accepted(row.ok());
  if (row.ok()) {
    const std::string json = record_json(*row);
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    fuzz::require(!parser.parse(json).get(root), "a decoded row renders as invalid JSON");
    auto again = decode_record(encode_record(*row));
    fuzz::require(again.ok(), "an encoded row does not decode");
    fuzz::require(record_json(*again) == json, "the binary round trip changed the row");
    auto from_json = decode_record(json);
    fuzz::require(from_json.ok(), "a row's JSON form does not decode");
    fuzz::require(record_json(*from_json) == json, "the JSON round trip changed the row");
  }

  if (auto key = decode_rollup_key(bytes)) {
    auto again = decode_rollup_key(encode_rollup_key(*key));
    fuzz::require(again && again->hour_us == key->hour_us && again->request_type == key->request_type &&
                      again->route == key->route && again->model == key->model && again->key == key->key &&
                      again->team == key->team,
                  "the rollup key round trip changed the key");
  }
  if (const auto totals = decode_totals(bytes)) {
    const auto again = decode_totals(encode_totals(*totals));
    fuzz::require(again && *again == *totals, "the rollup totals round trip changed the totals");
    const auto merged = merge_totals(&bytes, bytes);
    fuzz::require(merged.has_value(), "a valid rollup value does not merge with itself");
    CostTotals twice = *totals;
    twice += *totals;
    fuzz::require(decode_totals(*merged) == twice, "merging a rollup value with itself is not the sum");
  } else {
    fuzz::require(!merge_totals(nullptr, bytes), "a malformed rollup value merged");
  }
  return 0;
}
