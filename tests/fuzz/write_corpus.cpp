// Not a test: writes the binary seeds of the ledger_row and cache_entry corpora, which
// are encoded by frugal itself and so cannot be typed by hand. Not registered with CTest
// (tests/fuzz/CMakeLists.txt registers "fuzz *" only). Run
//   FRUGAL_WRITE_FUZZ_CORPUS=1 build/dev/tests/fuzz/fuzz_replay_test -tc="tool: write*"
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "cache/cached_response.h"
#include "router/ledger.h"
#include "tests/router/record_util.h"

namespace {

void save(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::filesystem::path dir = std::filesystem::path(FRUGAL_FUZZ_DIR) / target / "corpus";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("tool: write the binary fuzz corpora") {
  if (std::getenv("FRUGAL_WRITE_FUZZ_CORPUS") == nullptr) return;
  using namespace frugal;
  using namespace frugal::router;

  // The v2 rows (money in micro-dollars) and the v1 rollup value committed before exact
  // money (ok-two-tiers.bin, ok-cache-hit-no-tiers.bin, crash-ill-formed-utf8.bin,
  // bad-*.bin, edge-rollup-totals.bin, ok-v1-json-row.json) stay as they are: seeds of
  // the old formats, which still decode. This writes today's formats: the files named
  // *-v3 were last written when row v3 was current and are kept as v3 seeds; a rerun
  // writes row v4 under those names (ok-priced-shaped-v4.bin and
  // edge-rollup-totals-v3.bin were made with the v4 code directly).
  LedgerRecord two = testing::two_tier_record("req-1", 1'700'000'000'000'000);
  two.tiers[0].cost = Money::from_picos(5'400'000);  // sub-micro-dollar money
  two.total_cost = two.tiers[0].cost + two.tiers[1].cost;
  two.savings = two.baseline - two.total_cost;
  const std::string row = encode_record(two);
  save("ledger_row", "ok-two-tiers-v3.bin", row);
  LedgerRecord hit;
  hit.request_id = "req-2";
  hit.wall_us = 1;
  hit.cache = CacheOutcome::kHit;
  hit.dialect = "anthropic";
  hit.stream_cancelled = true;
  hit.status_code = 499;
  hit.baseline = Money::from_picos(std::numeric_limits<int128_t>::max());
  hit.savings = hit.baseline;
  save("ledger_row", "ok-cache-hit-no-tiers-v3.bin", encode_record(hit));
  save("ledger_row", "ok-v2-json-row.json", record_json(two));
  // Regression: ill-formed UTF-8 in a client-chosen field (x-request-id, x-frugal-team)
  // made record_json, and so /admin/ledger, invalid JSON.
  LedgerRecord odd = two;
  odd.request_id = "req-\xff\xc3";
  odd.team = "t\xed\xa0\x80";
  save("ledger_row", "crash-ill-formed-utf8-v3.bin", encode_record(odd));
  save("ledger_row", "bad-truncated-v3.bin", row.substr(0, row.size() / 2));
  save("ledger_row", "bad-trailing-byte-v3.bin", row + '\0');
  save("ledger_row", "bad-unknown-version-5.bin", '\x05' + row.substr(1));
  save("ledger_row", "edge-rollup-key.bin",
       encode_rollup_key({3'600'000'000, "classify", "classify", "small", "key-1", "search"}));
  CostTotals totals;
  totals.requests = 3;
  totals.attempts = 5;
  totals.cost = Money::from_picos(16'200'000);
  totals.baseline = Money::from_picos(std::numeric_limits<int128_t>::max() / 2);
  save("ledger_row", "edge-rollup-totals-v2.bin", encode_totals(totals));

  cache::CachedResponse e;
  e.completion_json =
      R"({"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})";
  e.model = "m";
  e.usage.input_tokens = 3;
  e.usage.output_tokens = 2;
  e.usage.reported = true;
  e.created_s = 1;
  e.stored_at_ms = 1'700'000'000'000;
  e.expires_at_ms = 1'700'000'360'000;
  e.route = "chat";
  e.tenant = "k1f0c4e1b9a2d3e77";
  const std::string entry = cache::encode_entry(e);
  save("cache_entry", "ok-completion.bin", entry);
  cache::CachedResponse c = e;
  c.completion_json.clear();
  c.chunks = {
      R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]})",
      R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]})",
      R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})"};
  c.expires_at_ms = 0;
  c.tenant.clear();
  save("cache_entry", "ok-chunks-never-expires.bin", cache::encode_entry(c));
  std::string flipped = entry;
  flipped[flipped.size() / 2] ^= 0x20;
  save("cache_entry", "bad-checksum.bin", flipped);
  save("cache_entry", "bad-truncated.bin", entry.substr(0, entry.size() - 3));
  save("cache_entry", "bad-too-short.bin", entry.substr(0, 12));
}
