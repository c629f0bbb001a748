// A ledger written by the micro-dollar code (tests/router/fixtures/ledger-v2, made by
// fixtures/make_ledger_v2.cpp at commit 8cd54d6: rows v2 and JSON v1, rollups v1, in SST
// files and the WAL) opened by today's Ledger: every row and total reads exactly, and
// new exact rows merge into the old rollups (through flushes and a compaction).
#include <doctest/doctest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "policies/budget.h"
#include "router/ledger.h"
#include "tests/support/temp_dir.h"

using namespace frugal;
using namespace frugal::router;
using frugal::test::TempDir;

namespace {

constexpr int64_t kHour = 3'600'000'000;
constexpr int64_t kH = 494'412 * kHour;  // 2026-05-27T12:00:00Z

std::string copy_fixture(const TempDir& dir) {
  const std::filesystem::path to = std::filesystem::path(dir.path()) / "db";
  std::filesystem::copy(std::filesystem::path(FRUGAL_SOURCE_DIR) / "tests/router/fixtures/ledger-v2/db", to,
                        std::filesystem::copy_options::recursive);
  return to.string();
}

// What `frugal costs` printed for the whole fixture with the micro-dollar code
// (fixtures/ledger-v2/costs.json), as totals.
CostTotals old_totals() {
  CostTotals t;
  t.requests = 10;
  t.attempts = 11;
  t.accepted = 8;
  t.rejected = 2;
  t.errors = 1;
  t.cache_hits = 1;
  t.input_tokens = 4'472;
  t.cached_input_tokens = 800;
  t.cache_write_5m_tokens = 200;
  t.cache_write_1h_tokens = 100;
  t.output_tokens = 82;
  t.cost = Money::from_micros(2'876);
  t.baseline = Money::from_micros(5'870);
  return t;
}

// A row of today's code: 12 + 6 tokens at $0.15 / $0.60 per 1M, exactly.
LedgerRecord exact_row(std::string id, int64_t t) {
  LedgerRecord r;
  r.request_id = std::move(id);
  r.wall_us = t;
  r.key_id = "key-1";
  r.team = "search";
  r.request_type = "classify";
  r.route = "classify";
  r.dialect = "openai";
  LedgerTier a;
  a.model = "gpt-4o-mini";
  a.provider = "openai";
  a.usage.input_tokens = 12;
  a.usage.output_tokens = 6;
  a.usage.reported = true;
  a.cost = price_tokens(12, 150'000) + price_tokens(6, 600'000);
  a.status = TierStatus::kAccepted;
  r.tiers = {a};
  r.cache = CacheOutcome::kMiss;
  r.answer_model = "gpt-4o-mini";
  r.total_cost = a.cost;
  r.baseline = price_tokens(12, 2'500'000) + price_tokens(6, 10'000'000);
  r.savings = r.baseline - r.total_cost;
  return r;
}

const LedgerRecord* find(const std::vector<LedgerRecord>& rows, const std::string& id) {
  for (const auto& r : rows)
    if (r.request_id == id) return &r;
  return nullptr;
}

}  // namespace

TEST_CASE("a ledger written by the micro-dollar code reads exactly: rows v2 and JSON v1, rollups v1") {
  TempDir dir;
  const std::string path = copy_fixture(dir);
  auto opened = Ledger::open_read_only(path);
  REQUIRE_MESSAGE(opened.ok(), (opened.ok() ? "" : opened.error().message));
  const Ledger& l = **opened;

  auto rows = l.scan(kH, kH + 2 * kHour, 100);
  REQUIRE_MESSAGE(rows.ok(), (rows.ok() ? "" : rows.error().message));
  std::vector<std::string> ids;
  for (const auto& r : *rows) ids.push_back(r.request_id);
  CHECK(ids == std::vector<std::string>{"frg-cheap-0", "frg-cheap-1", "frg-cheap-2", "frg-cheap-3", "frg-cheap-4",
                                        "frg-cascade-0", "frg-hit-0", "frg-json-0", "frg-cascade-1",
                                        "frg-failed-0"});

  const LedgerRecord* cheap = find(*rows, "frg-cheap-0");
  REQUIRE(cheap);
  CHECK(cheap->wall_us == kH + 1'000);
  CHECK(cheap->dialect == "openai");
  REQUIRE(cheap->tiers.size() == 1);
  CHECK(cheap->tiers[0].usage.input_tokens == 12);
  CHECK(cheap->tiers[0].usage.output_tokens == 6);
  CHECK(cheap->tiers[0].usage.reported);
  CHECK(cheap->tiers[0].cost == Money::from_micros(6));  // as that code booked it
  CHECK(cheap->tiers[0].latency_us == 41'000);
  CHECK(cheap->tiers[0].reason == "single tier");
  CHECK(cheap->total_cost == Money::from_micros(6));
  CHECK(cheap->baseline == Money::from_micros(90));
  CHECK(cheap->savings == Money::from_micros(84));

  const LedgerRecord* cascade = find(*rows, "frg-cascade-1");
  REQUIRE(cascade);
  CHECK(cascade->dialect == "anthropic");
  CHECK(cascade->key_id == "key-2");
  REQUIRE(cascade->tiers.size() == 3);
  CHECK(cascade->tiers[0].status == TierStatus::kRejected);
  CHECK(cascade->tiers[0].score == -0.43);
  CHECK(cascade->tiers[0].cost == Money::from_micros(233));
  CHECK(cascade->tiers[1].usage.cache_write_1h_tokens == 50);
  CHECK(cascade->tiers[1].cost == Money::from_micros(1'156));
  CHECK(cascade->tiers[2].status == TierStatus::kVerifier);
  CHECK(cascade->tiers[2].reason == "verifier: yes");
  CHECK(cascade->total_cost == Money::from_micros(1'420));
  CHECK(cascade->savings == Money::from_micros(1'200));

  const LedgerRecord* json = find(*rows, "frg-json-0");  // stored as {"v":1,...}
  REQUIRE(json);
  CHECK(json->tiers.size() == 1);
  CHECK(json->total_cost == Money::from_micros(6));
  CHECK(json->baseline == Money::from_micros(90));

  const LedgerRecord* hit = find(*rows, "frg-hit-0");
  REQUIRE(hit);
  CHECK(hit->cache == CacheOutcome::kHit);
  CHECK(hit->tiers.empty());
  const LedgerRecord* failed = find(*rows, "frg-failed-0");
  REQUIRE(failed);
  CHECK(failed->status_code == 502);
  CHECK(failed->stream_cancelled);
  CHECK(failed->team.empty());

  auto all = l.query(kH, kH + 2 * kHour, {});
  REQUIRE(all.ok());
  CHECK(all->totals == old_totals());
  const GroupBy by_hour[] = {GroupBy::kHour};
  auto hours = l.query(kH, kH + 2 * kHour, by_hour);
  REQUIRE(hours.ok());
  REQUIRE(hours->rows.size() == 2);
  CHECK(hours->rows[0].totals.requests == 8);
  CHECK(hours->rows[0].totals.cost == Money::from_micros(6 * 6 + 1'420));
  CHECK(hours->rows[1].totals.cost == Money::from_micros(1'420));
}

TEST_CASE("new exact rows merge into micro-dollar rollups, through flushes and a compaction") {
  TempDir dir;
  const std::string path = copy_fixture(dir);
  rocksdb::DBOptions dbo;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs{
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kLedgerCf, ledger_cf_options()},
      {kRollupsCf, rollups_cf_options()}};
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(dbo, path, cfs, &h, &raw);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  {
    auto opened = Ledger::open(db.get(), h[1], h[2]);
    REQUIRE(opened.ok());
    Ledger& l = **opened;
    constexpr int kNew = 1'000;
    for (int i = 0; i < kNew; ++i) {
      const int64_t t = (i % 2 ? kH : kH + kHour) + 100'000 + i;
      REQUIRE(l.append(exact_row("frg-new-" + std::to_string(i), t)));
      if (i == kNew / 2) {
        REQUIRE(l.flush().ok());
        REQUIRE(db->Flush(rocksdb::FlushOptions(), h[2]).ok());
      }
    }
    REQUIRE(l.flush().ok());
    CostTotals want = old_totals();
    want.requests += kNew;
    want.attempts += kNew;
    want.accepted += kNew;
    want.input_tokens += 12 * kNew;
    want.output_tokens += 6 * kNew;
    want.cost += Money::from_picos(int128_t{5'400'000} * kNew);     // exactly $0.0054 more
    want.baseline += Money::from_picos(int128_t{90'000'000} * kNew);
    auto q = l.query(kH, kH + 2 * kHour, {});
    REQUIRE(q.ok());
    CHECK(q->totals == want);
    CHECK(q->totals.cost.to_usd_string() == "0.008276");
    // Fold every operand (v1 values in SST files, v1 operands replayed from the WAL, v2
    // operands) on disk, then read again.
    REQUIRE(db->Flush(rocksdb::FlushOptions(), h[2]).ok());
    REQUIRE(db->CompactRange(rocksdb::CompactRangeOptions(), h[2], nullptr, nullptr).ok());
    auto c = l.query(kH, kH + 2 * kHour, {});
    REQUIRE(c.ok());
    CHECK(c->totals == want);

    auto rows = l.scan(kH, kH + 2 * kHour, 10'000);
    REQUIRE(rows.ok());
    CHECK(rows->size() == 10 + kNew);
    const LedgerRecord* r = find(*rows, "frg-new-7");
    REQUIRE(r);
    CHECK(r->total_cost.to_usd_string() == "0.0000054");
    CHECK(r->tiers[0].cost == Money::from_picos(5'400'000));

    // Budgets are rebuilt from the mixed rollups exactly.
    config::BudgetSpec b;
    b.name = "global per month";
    b.per = config::BudgetPeriod::kMonth;
    b.hard = Money::from_micros(1'000'000);
    struct FixedClock final : policies::Clock {
      int64_t now_us() const override { return kH + kHour + 1; }
    } clock;
    policies::BudgetTracker tracker({b}, &clock);
    REQUIRE(restore_budgets(l, tracker, kH + kHour + 1).ok());
    const auto snap = tracker.snapshot();
    REQUIRE(snap.size() == 1);
    CHECK(snap[0].spent == want.cost);
    l.close();
  }
  for (auto* x : h) db->DestroyColumnFamilyHandle(x);
  REQUIRE(db->Close().ok());
}
