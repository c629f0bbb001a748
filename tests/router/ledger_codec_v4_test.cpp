// Ledger row v4 (price source per tier, catalogue version, price unknown, output shaping)
// and rollup value v3 (the unpriced counter), next to every older form: rows v3 written by
// the code before (tests/router/fixtures/ledger-v3, made by fixtures/make_ledger_v3.cpp),
// rows v2 and JSON v1 in the ledger-v2 data directory, rollup values v2.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "router/ledger.h"
#include "router/ledger_codec.h"
#include "router/ledger_json.h"
#include "tests/support/temp_dir.h"

using namespace frugal;
using namespace frugal::router;
using frugal::policies::PriceSource;

namespace {

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

// tag -> bytes, in file order.
std::vector<std::pair<std::string, std::string>> v3_fixture() {
  std::ifstream f(std::filesystem::path(FRUGAL_SOURCE_DIR) / "tests/router/fixtures/ledger-v3/rows.hex");
  REQUIRE(f);
  std::vector<std::pair<std::string, std::string>> out;
  std::string tag, hex;
  while (f >> tag >> hex) out.emplace_back(tag, unhex(hex));
  REQUIRE(out.size() == 3);
  return out;
}

LedgerRecord v4_row() {
  LedgerRecord r;
  r.request_id = "frg-v4";
  r.wall_us = 1'780'000'000'000'000;
  r.request_type = "chat";
  r.route = "chat";
  r.dialect = "openai";
  LedgerTier a;
  a.model = "gpt-4o-mini";
  a.provider = "openai";
  a.usage.input_tokens = 12;
  a.usage.output_tokens = 6;
  a.usage.reported = true;
  a.cost = Money::from_picos(5'400'000);
  a.status = TierStatus::kRejected;
  a.price = PriceSource::kCatalogue;
  LedgerTier b;
  b.model = "my-finetune";
  b.provider = "local";
  b.usage.input_tokens = 12;
  b.usage.output_tokens = 3;
  b.status = TierStatus::kAccepted;
  b.price = PriceSource::kUnknown;
  r.tiers = {a, b};
  r.cache = CacheOutcome::kMiss;
  r.answer_model = "my-finetune";
  r.total_cost = a.cost;
  r.catalogue_version = "2026.12.06";
  r.price_unknown = true;
  r.shaping.applied = kShapedMaxTokensCap | kShapedConcise;
  r.shaping.max_tokens = 256;
  return r;
}

}  // namespace

TEST_CASE("row v3 written by the code before decodes exactly, and re-encodes as v4") {
  const auto fx = v3_fixture();
  REQUIRE(fx[0].first == "row");
  REQUIRE(static_cast<uint8_t>(fx[0].second.front()) == 3);
  auto r = decode_record(fx[0].second);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(r->request_id == "frg-v3-cascade");
  CHECK(r->dialect == "anthropic");
  REQUIRE(r->tiers.size() == 2);
  CHECK(r->tiers[0].score == -0.75);
  CHECK(r->tiers[0].usage.cached_input_tokens == 20);
  CHECK(r->tiers[0].cost == Money::from_picos(4'500'000));
  CHECK(r->tiers[1].cost == Money::from_picos(123'456'789));
  CHECK(r->tiers[1].reason == "last tier answers");
  CHECK(r->total_cost == Money::from_picos(127'956'789));
  CHECK(r->baseline == Money::from_picos(900'000'000));
  // What v3 could not say reads as "not recorded".
  CHECK(r->tiers[0].price == PriceSource::kNone);
  CHECK(r->catalogue_version.empty());
  CHECK_FALSE(r->price_unknown);
  CHECK(r->shaping == ShapingRecord{});

  const std::string v4 = encode_record(*r);
  CHECK(static_cast<uint8_t>(v4.front()) == 4);
  auto again = decode_record(v4);
  REQUIRE(again.ok());
  CHECK(encode_record(*again) == v4);
  CHECK(again->total_cost == r->total_cost);

  auto hit = decode_record(fx[1].second);
  REQUIRE(hit.ok());
  CHECK(hit->cache == CacheOutcome::kHit);
  CHECK(hit->tiers.empty());
  CHECK(hit->baseline == Money::from_picos(7'000));
}

TEST_CASE("row v4 keeps price sources, the catalogue version, price unknown and shaping, in binary and JSON") {
  const LedgerRecord r = v4_row();
  const std::string bytes = encode_record(r);
  auto d = decode_record(bytes);
  REQUIRE_MESSAGE(d.ok(), (d.ok() ? "" : d.error().message));
  REQUIRE(d->tiers.size() == 2);
  CHECK(d->tiers[0].price == PriceSource::kCatalogue);
  CHECK(d->tiers[1].price == PriceSource::kUnknown);
  CHECK(d->catalogue_version == "2026.12.06");
  CHECK(d->price_unknown);
  CHECK(d->shaping.applied == (kShapedMaxTokensCap | kShapedConcise));
  CHECK(d->shaping.max_tokens == 256);
  CHECK(encode_record(*d) == bytes);

  const std::string json = record_json(r);
  CHECK(json.find(R"("price":"catalogue")") != std::string::npos);
  CHECK(json.find(R"("price":"unknown")") != std::string::npos);
  CHECK(json.find(R"("catalogue_version":"2026.12.06","price_unknown":true)") != std::string::npos);
  CHECK(json.find(R"("shaping":{"applied":["max_tokens_cap","concise"],"max_tokens":256})") != std::string::npos);
  auto j = record_from_json(json);
  REQUIRE_MESSAGE(j.ok(), (j.ok() ? "" : j.error().message));
  CHECK(encode_record(*j) == bytes);
  CHECK(shaping_names(kShapingBits) == "max_tokens_default,max_tokens_cap,stop,concise,reasoning_effort");

  // Truncated anywhere, or a price source / shaping bit out of range: refused.
  for (size_t n = 0; n < bytes.size(); ++n) CHECK_FALSE(decode_record(bytes.substr(0, n)).ok());
  std::string bad_bits = bytes;
  // The shaping byte, before max_tokens' two varint bytes (zigzag 512: 0x80 0x04).
  REQUIRE(static_cast<uint8_t>(bad_bits[bad_bits.size() - 3]) == (kShapedMaxTokensCap | kShapedConcise));
  bad_bits[bad_bits.size() - 3] = static_cast<char>(0x20);
  CHECK_FALSE(decode_record(bad_bits).ok());
}

TEST_CASE("rollup v2 values written before decode, and merge with v3 operands carrying unpriced tiers") {
  const auto fx = v3_fixture();
  REQUIRE(fx[2].first == "totals");
  auto old = decode_totals(fx[2].second);
  REQUIRE(old);
  CHECK(old->requests == 2);
  CHECK(old->cache_hits == 1);
  CHECK(old->unpriced == 0);
  CHECK(old->cost == Money::from_picos(127'956'789));

  const LedgerRecord r = v4_row();
  CostTotals add;
  for (auto& [key, t] : rollup_deltas(r)) add += t;
  CHECK(add.unpriced == 1);  // the my-finetune tier
  const std::string operand = encode_totals(add);
  CHECK(static_cast<uint8_t>(operand.front()) == 3);
  const std::string_view existing = fx[2].second;
  auto merged = merge_totals(&existing, operand);
  REQUIRE(merged);
  auto m = decode_totals(*merged);
  REQUIRE(m);
  CHECK(m->requests == 3);
  CHECK(m->unpriced == 1);
  CHECK(m->cost == Money::from_picos(127'956'789 + 5'400'000));
}

TEST_CASE("every row of the ledger-v2 fixture re-encodes as v4 and decodes to the same row") {
  frugal::test::TempDir dir;
  const std::filesystem::path to = std::filesystem::path(dir.path()) / "db";
  std::filesystem::copy(std::filesystem::path(FRUGAL_SOURCE_DIR) / "tests/router/fixtures/ledger-v2/db", to,
                        std::filesystem::copy_options::recursive);
  auto opened = Ledger::open_read_only(to.string());
  REQUIRE_MESSAGE(opened.ok(), (opened.ok() ? "" : opened.error().message));
  constexpr int64_t kHour = 3'600'000'000;
  constexpr int64_t kH = 494'412 * kHour;
  auto rows = (*opened)->scan(kH, kH + 2 * kHour, 100);
  REQUIRE(rows.ok());
  CHECK(rows->size() == 10);
  for (const auto& r : *rows) {
    CAPTURE(r.request_id);
    const std::string v4 = encode_record(r);
    auto d = decode_record(v4);
    REQUIRE(d.ok());
    CHECK(encode_record(*d) == v4);
    CHECK(d->total_cost == r.total_cost);
    CHECK(d->tiers.size() == r.tiers.size());
  }
}
