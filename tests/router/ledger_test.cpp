#include <doctest/doctest.h>
#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "policies/budget.h"
#include "record_util.h"
#include "router/ledger.h"
#include "tests/support/full_fs.h"
#include "tests/support/temp_dir.h"

using namespace frugal;
using namespace frugal::router;
using frugal::router::testing::numbered;
using frugal::router::testing::two_tier_record;
using frugal::test::TempDir;

namespace {

constexpr int64_t kHour = 3'600'000'000;
constexpr int64_t kH = 473'352 * kHour;  // 2024-01-01T00:00:00Z


std::unique_ptr<Ledger> open_ledger(const std::string& path, LedgerOptions o = {}) {
  auto l = Ledger::open_standalone(path, o);
  REQUIRE_MESSAGE(l.ok(), (l.ok() ? "" : l.error().message));
  return std::move(*l);
}

LedgerRecord cache_hit(std::string id, int64_t t) {
  LedgerRecord r;
  r.request_id = std::move(id);
  r.wall_us = t;
  r.key_id = "key-1";
  r.team = "search";
  r.request_type = "classify";
  r.route = "classify";
  r.dialect = "anthropic";
  r.cache = CacheOutcome::kHit;
  r.answer_model = "big";
  r.baseline = Money::from_micros(2'600);
  r.savings = Money::from_micros(2'600);
  return r;
}

void append_fixture(Ledger& l) {
  for (int i = 0; i < 3; ++i) CHECK(l.append(two_tier_record(numbered("a", i), kH + i)));
  for (int i = 0; i < 2; ++i)
    CHECK(l.append(two_tier_record(numbered("b", i), kH + kHour + 300'000'000 + i, "key-2", "extract")));
  CHECK(l.append(cache_hit("c0", kH + 10)));
  REQUIRE(l.flush().ok());
}

CostTotals expected_all() {
  CostTotals t;
  t.requests = 6;
  t.attempts = 10;
  t.accepted = 5;
  t.rejected = 5;
  t.cache_hits = 1;
  t.input_tokens = 10'000;
  t.cached_input_tokens = 2'000;
  t.cache_write_5m_tokens = 500;
  t.output_tokens = 110;
  t.cost = Money::from_micros(6'945);        // 5 × 1389
  t.baseline = Money::from_micros(15'700);   // 5 × 2620 + 2600
  return t;
}

}  // namespace

TEST_CASE("record encoding round-trips and is versioned") {
  LedgerRecord r = two_tier_record("frg-1", 123);
  r.stream_cancelled = true;
  r.status_code = 499;
  r.tiers[1].score.reset();
  r.tiers[1].latency_us = -5;  // negative values survive the zigzag varints
  const std::string bytes = encode_record(r);
  CHECK(static_cast<unsigned char>(bytes[0]) == 4);  // v4: price sources and shaping (ledger_codec_v4_test.cpp)
  auto d = decode_record(bytes);
  REQUIRE(d.ok());
  CHECK(encode_record(*d) == bytes);
  CHECK(record_json(*d) == record_json(r));
  CHECK(d->tiers[0].score.value() == doctest::Approx(-0.43));
  CHECK(!d->tiers[1].score);
  CHECK(d->tiers[1].latency_us == -5);
  CHECK(d->tiers[1].usage.cache_write_5m_tokens == 100);
  CHECK(d->stream_cancelled);
  CHECK(d->cache == CacheOutcome::kMiss);
  CHECK(d->status_code == 499);

  // The JSON form decodes too (rows stored before the binary form are JSON).
  const std::string json = record_json(r);
  CHECK(json.rfind("{\"v\":3,", 0) == 0);
  auto dj = decode_record(json);
  REQUIRE(dj.ok());
  CHECK(encode_record(*dj) == bytes);

  CHECK(!decode_record("{\"v\":2}").ok());
  CHECK(!decode_record("{\"v\":3}").ok());
  CHECK(!decode_record("garbage").ok());
  CHECK(!decode_record("").ok());
}

TEST_CASE("rows keep money exact to the picodollar in the binary and the JSON form") {
  LedgerRecord r = two_tier_record("frg-exact", 123);
  r.tiers[0].cost = Money::from_picos(5'400'000);  // 12 + 6 tokens at $0.15 / $0.60 per 1M
  r.tiers[1].cost = Money::from_picos(-1);
  r.total_cost = Money::from_picos(std::numeric_limits<int128_t>::max());
  r.baseline = Money::from_picos(std::numeric_limits<int128_t>::min());
  r.savings = Money::from_micros(std::numeric_limits<int64_t>::min());
  auto d = decode_record(encode_record(r));
  REQUIRE(d.ok());
  CHECK(d->tiers[0].cost == Money::from_picos(5'400'000));
  CHECK(d->tiers[1].cost == Money::from_picos(-1));
  CHECK(d->total_cost == r.total_cost);
  CHECK(d->baseline == r.baseline);
  CHECK(d->savings == r.savings);
  const std::string json = record_json(r);
  // "cost" stays integer micro-dollars (rounded) for older readers; *_usd is exact.
  CHECK(json.find(R"("cost":5,"cost_usd":"0.0000054")") != std::string::npos);
  CHECK(json.find(R"("cost":0,"cost_usd":"-0.000000000001")") != std::string::npos);
  auto dj = decode_record(json);
  REQUIRE(dj.ok());
  CHECK(encode_record(*dj) == encode_record(r));

  // A JSON v1 row (micro-dollars, as stored before the binary rows) still reads.
  std::string v1 = record_json(two_tier_record("frg-v1", 123));
  v1.replace(0, 6, "{\"v\":1");
  auto d1 = decode_record(v1);
  REQUIRE(d1.ok());
  CHECK(d1->total_cost == Money::from_micros(1'389));
  CHECK(d1->tiers[0].cost == Money::from_micros(233));
  CHECK(encode_record(*d1) == encode_record(two_tier_record("frg-v1", 123)));
}

TEST_CASE("rollup values: v1 (int64 micro-dollars) and v2 (128-bit picodollars) decode and merge together") {
  CostTotals a;
  a.requests = 2;
  a.input_tokens = 24;
  a.output_tokens = 12;
  a.cost = Money::from_picos(10'800'000);
  a.baseline = Money::from_picos(std::numeric_limits<int64_t>::max());  // past 64 bits once summed
  // Written as v3 (v2's counters, then unpriced); v2 values are decoded in
  // ledger_codec_v4_test.cpp.
  const std::string v2 = encode_totals(a);
  CHECK(v2.size() == 1 + 12 * 8 + 2 * 16);
  CHECK(static_cast<unsigned char>(v2[0]) == 3);
  CHECK(decode_totals(v2) == a);
  // v1 as the micro-dollar code wrote it: 13 int64 little-endian, cost and baseline last.
  auto v1 = [](std::initializer_list<int64_t> fields) {
    std::string out(1, '\1');
    for (int64_t f : fields)
      for (int i = 0; i < 8; ++i) out += static_cast<char>((static_cast<uint64_t>(f) >> (8 * i)) & 0xff);
    return out;
  };
  const std::string old = v1({1, 1, 1, 0, 0, 0, 12, 0, 0, 0, 6, 6, 90});
  auto d = decode_totals(old);
  REQUIRE(d);
  CHECK(d->requests == 1);
  CHECK(d->cost == Money::from_micros(6));
  CHECK(d->baseline == Money::from_micros(90));
  // A shorter v1 value (an older writer, fewer counters): the missing ones are 0.
  auto shorter = decode_totals(v1({3, 4}));
  REQUIRE(shorter);
  CHECK(shorter->attempts == 4);
  CHECK(shorter->cost == Money{});
  // Merges in every order give the exact sum, as v2.
  CostTotals want = a;
  want += *d;
  want += *d;
  const std::string_view old_sv = old, v2_sv = v2;
  auto m1 = merge_totals(&old_sv, v2);
  REQUIRE(m1);
  const std::string_view m1_sv = *m1;
  auto m2 = merge_totals(&m1_sv, old);
  REQUIRE(m2);
  CHECK(static_cast<unsigned char>((*m2)[0]) == 3);
  CHECK(decode_totals(*m2) == want);
  auto m3 = merge_totals(&v2_sv, old);
  REQUIRE(m3);
  const std::string_view m3_sv = *m3;
  CHECK(decode_totals(*merge_totals(&m3_sv, old)) == want);
  CHECK(merge_totals(nullptr, old) == encode_totals(*d));
  // Malformed operands are refused, never half-summed.
  CHECK(!merge_totals(nullptr, ""));
  CHECK(!merge_totals(nullptr, v2.substr(0, v2.size() - 1)));
  CHECK(!merge_totals(&v2_sv, old.substr(0, 5)));
  CHECK(!merge_totals(&v2_sv, std::string(1, '\3')));
}

TEST_CASE("a truncated, extended or corrupted binary row is an error, never a crash") {
  const std::string bytes = encode_record(two_tier_record("frg-2", 456));
  for (size_t n = 0; n < bytes.size(); ++n) CHECK(!decode_record(bytes.substr(0, n)).ok());
  CHECK(!decode_record(bytes + '\0').ok());
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 2000; ++i) {
    std::string m = bytes;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    m[1 + x % (m.size() - 1)] = static_cast<char>(x >> 32);
    auto d = decode_record(m);  // may decode to other values; must not crash or over-read
    if (d) CHECK(encode_record(*d).size() <= m.size() + 16);
  }
}

TEST_CASE("a verifier call is priced to its model but is not an attempt") {
  LedgerRecord r = two_tier_record("frg-v", kH);
  LedgerTier v;
  v.model = "judge";
  v.provider = "openai";
  v.usage.input_tokens = 50;
  v.usage.output_tokens = 1;
  v.cost = Money::from_micros(11);
  v.status = TierStatus::kVerifier;
  v.score = 0.93;
  r.tiers.insert(r.tiers.begin() + 1, v);
  r.total_cost += v.cost;
  r.savings = r.baseline - r.total_cost;
  auto d = decode_record(encode_record(r));
  REQUIRE(d.ok());
  CHECK(d->tiers[1].status == TierStatus::kVerifier);
  CostTotals judge, all;
  for (const auto& [k, t] : rollup_deltas(r)) {
    all += t;
    if (k.model == "judge") judge = t;
  }
  CHECK(judge.attempts == 0);
  CHECK(judge.requests == 0);
  CHECK(judge.input_tokens == 50);
  CHECK(judge.cost == Money::from_micros(11));
  CHECK(all.attempts == 2);  // the two tiers only
  CHECK(all.cost == r.total_cost);
}

TEST_CASE("keys sort by time and decode back") {
  CHECK(ledger_key(1, "z") < ledger_key(2, "a"));
  CHECK(ledger_key(255, "") < ledger_key(256, ""));
  RollupKey k{kH, "classify", "classify", "gpt-4o", "key-1", "search"};
  auto d = decode_rollup_key(encode_rollup_key(k));
  REQUIRE(d);
  CHECK(d->hour_us == kH);
  CHECK(d->model == "gpt-4o");
  CHECK(d->team == "search");
  CHECK(!decode_rollup_key("short"));
  CostTotals t = expected_all();
  CHECK(decode_totals(encode_totals(t)) == t);
}

TEST_CASE("append then query equals hand totals exactly") {
  TempDir dir;
  auto l = open_ledger(dir.path());
  append_fixture(*l);
  auto all = l->query(kH, kH + 2 * kHour, {});
  REQUIRE(all.ok());
  CHECK(all->totals == expected_all());
  REQUIRE(all->rows.size() == 1);
  CHECK(all->totals.savings() == Money::from_micros(8'755));

  const GroupBy by_model[] = {GroupBy::kModel};
  auto m = l->query(kH, kH + 2 * kHour, by_model);
  REQUIRE(m->rows.size() == 2);
  CHECK(m->rows[0].group[0] == "big");
  CHECK(m->rows[0].totals.requests == 6);
  CHECK(m->rows[0].totals.attempts == 5);
  CHECK(m->rows[0].totals.cost == Money::from_micros(5'780));
  CHECK(m->rows[0].totals.baseline == Money::from_micros(15'700));
  CHECK(m->rows[0].totals.cached_input_tokens == 2'000);
  CHECK(m->rows[1].group[0] == "small");
  CHECK(m->rows[1].totals.requests == 0);
  CHECK(m->rows[1].totals.rejected == 5);
  CHECK(m->rows[1].totals.cost == Money::from_micros(1'165));
  CHECK(m->rows[1].totals.savings() == Money::from_micros(-1'165));

  const GroupBy by_type_key[] = {GroupBy::kRequestType, GroupBy::kKey};
  auto tk = l->query(kH, kH + 2 * kHour, by_type_key);
  REQUIRE(tk->rows.size() == 2);
  CHECK(tk->rows[0].group == std::vector<std::string>{"classify", "key-1"});
  CHECK(tk->rows[0].totals.requests == 4);
  CHECK(tk->rows[0].totals.cache_hits == 1);
  CHECK(tk->rows[1].group == std::vector<std::string>{"extract", "key-2"});
  CHECK(tk->rows[1].totals.cost == Money::from_micros(2 * 1'389));

  // Hour granularity: from mid-hour still includes that hour; `to` is exclusive.
  auto first = l->query(kH + kHour / 2, kH + kHour, {});
  CHECK(first->totals.requests == 4);
  auto none = l->query(kH + 2 * kHour, kH + 3 * kHour, {});
  CHECK(none->rows.empty());
  CHECK(none->totals == CostTotals{});

  auto rows = l->scan(kH, kH + 2 * kHour, 100);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 6);
  CHECK((*rows)[0].request_id == "a0");
  CHECK((*rows)[3].request_id == "c0");  // time order: a0 a1 a2 (kH+0..2), then c0 (kH+10)
  CHECK((*rows)[5].request_id == "b1");
  CHECK(l->stats().written == 6);
}

TEST_CASE("the merge operator sums exactly across many merges, flushes and compactions") {
  TempDir dir;
  auto l = open_ledger(dir.path(), LedgerOptions{.queue_capacity = 100'000, .max_batch = 97, .sync = false});
  constexpr int kN = 3'000;
  for (int i = 0; i < kN; ++i) {
    // Alternate async and sync appends to exercise both paths.
    if (i % 500 == 0) REQUIRE(l->append_sync(two_tier_record(numbered("m", i), kH + i)).ok());
    else REQUIRE(l->append(two_tier_record(numbered("m", i), kH + i)));
  }
  REQUIRE(l->flush().ok());
  auto q = l->query(kH, kH + kHour, {});
  CHECK(q->totals.requests == kN);
  CHECK(q->totals.cost == Money::from_micros(int64_t{kN} * 1'389));
  CHECK(q->totals.baseline == Money::from_micros(int64_t{kN} * 2'620));
  CHECK(q->totals.cached_input_tokens == int64_t{kN} * 400);
  l.reset();  // close
  // Reopen, force flush + compaction so merges are folded by the operator on disk.
  {
    rocksdb::DBOptions dbo;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs{
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {kLedgerCf, ledger_cf_options()},
        {kRollupsCf, rollups_cf_options()}};
    std::vector<rocksdb::ColumnFamilyHandle*> h;
    rocksdb::DB* db = nullptr;
    REQUIRE(rocksdb::DB::Open(dbo, dir.path(), cfs, &h, &db).ok());
    auto led = Ledger::open(db, h[1], h[2]);
    REQUIRE(led.ok());
    for (int i = 0; i < 100; ++i) REQUIRE((*led)->append(two_tier_record(numbered("n", i), kH + kN + i)));
    REQUIRE((*led)->flush().ok());
    REQUIRE(db->Flush(rocksdb::FlushOptions(), h[2]).ok());
    REQUIRE(db->CompactRange(rocksdb::CompactRangeOptions(), h[2], nullptr, nullptr).ok());
    auto q2 = (*led)->query(kH, kH + kHour, {});
    CHECK(q2->totals.requests == kN + 100);
    CHECK(q2->totals.cost == Money::from_micros(int64_t{kN + 100} * 1'389));
    led->reset();
    for (auto* x : h) db->DestroyColumnFamilyHandle(x);
    delete db;
  }
}

TEST_CASE("reopen after close keeps rows and rollups") {
  TempDir dir;
  {
    auto l = open_ledger(dir.path());
    append_fixture(*l);
    // Appends without flush are written by close().
    CHECK(l->append(two_tier_record("late", kH + 20)));
  }
  auto l = open_ledger(dir.path());
  auto q = l->query(kH, kH + 2 * kHour, {});
  CostTotals want = expected_all();
  want.requests += 1;
  want.attempts += 2;
  want.accepted += 1;
  want.rejected += 1;
  want.input_tokens += 2'000;
  want.cached_input_tokens += 400;
  want.cache_write_5m_tokens += 100;
  want.output_tokens += 22;
  want.cost += Money::from_micros(1'389);
  want.baseline += Money::from_micros(2'620);
  CHECK(q->totals == want);
  CHECK(l->scan(kH, kH + 2 * kHour, 100)->size() == 7);
  CHECK(l->scan(kH, kH + 2 * kHour, 2)->size() == 2);
}

TEST_CASE("after close, appends are refused rather than lost silently") {
  TempDir dir;
  auto l = open_ledger(dir.path());
  l->close();
  CHECK(!l->append(two_tier_record("x", kH)));
  CHECK(!l->append_sync(two_tier_record("y", kH)).ok());
  CHECK(l->stats().dropped == 1);
}

TEST_CASE("append_durable writes on the caller's thread when the writer is idle, else queues") {
  TempDir dir;
  {
    auto l = open_ledger(dir.path());
    int made = 0;
    // Idle ledger: written before it returns, readable at once, no callback is even made.
    CHECK(l->append_durable(two_tier_record("now", kH), [&] {
      ++made;
      return Ledger::OnWritten([](bool) {});
    }));
    CHECK(made == 0);
    CHECK(l->stats().written_inline == 1);
    auto rows = l->scan(kH, kH + 1, 10);
    REQUIRE(rows->size() == 1);
    CHECK((*rows)[0].request_id == "now");
    CHECK(l->query(kH, kH + kHour, {})->totals.cost == Money::from_micros(1'389));
  }
  {
    // A slow writer (fault injection) forces the queued path: the callback reports it.
    LedgerOptions o;
    o.write_delay_us = 2'000;
    auto l = open_ledger(dir.path(), o);
    std::atomic<int> ok{0};
    CHECK(!l->append_durable(two_tier_record("queued", kH + 1),
                             [&] { return Ledger::OnWritten([&](bool good) { ok += good ? 1 : 100; }); }));
    REQUIRE(l->flush().ok());
    // on_written runs on the writer thread just after flush() may have returned.
    for (int i = 0; i < 20'000 && ok == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(ok == 1);
    CHECK(l->stats().written_inline == 0);
    l->close();
    // Closed: refused, and the callback says so (inline).
    bool refused = false;
    CHECK(!l->append_durable(two_tier_record("late", kH + 2),
                             [&] { return Ledger::OnWritten([&](bool good) { refused = !good; }); }));
    CHECK(refused);
  }
  auto l = open_ledger(dir.path());
  CHECK(l->scan(kH, kH + 10, 10)->size() == 2);
}

TEST_CASE("a batch sums its rollup deltas per key before merging, exactly") {
  TempDir dir;
  LedgerOptions o;
  o.write_delay_us = 20'000;  // lets the queue fill while the writer sleeps
  auto l = open_ledger(dir.path(), o);
  for (int i = 0; i < 60; ++i) CHECK(l->append(two_tier_record(numbered("b", i), kH + i)));
  for (int i = 0; i < 20; ++i) CHECK(l->append(cache_hit(numbered("h", i), kH + 100 + i)));
  REQUIRE(l->flush().ok());
  CHECK(l->stats().written == 80);
  CHECK(l->stats().batches < 80);  // some records shared a batch
  auto q = l->query(kH, kH + kHour, {});
  CHECK(q->totals.requests == 80);
  CHECK(q->totals.cache_hits == 20);
  CHECK(q->totals.attempts == 120);
  CHECK(q->totals.cost == Money::from_micros(60 * 1'389));
  CHECK(q->totals.baseline == Money::from_micros(60 * 2'620 + 20 * 2'600));
  CHECK(l->scan(kH, kH + kHour, 1000)->size() == 80);
}

TEST_CASE("budgets are rebuilt from the rollups") {
  TempDir dir;
  auto l = open_ledger(dir.path());
  append_fixture(*l);
  auto pc = config::load_policy_text(
      "request_types:\n  - name: chat\nbudgets:\n"
      "  - { scope: { team: search }, per: day, hard: 0.005 }\n"
      "  - { scope: { key: key-2 }, per: hour, hard: 1 }\n",
      "b.yaml");
  REQUIRE(pc.ok());
  policies::ManualClock clock(kH + kHour + 30 * 60'000'000LL);  // 01:30 on the fixture's day
  policies::BudgetTracker t(pc->budgets, &clock);
  REQUIRE(restore_budgets(*l, t, clock.now_us()).ok());
  auto s = t.snapshot();
  CHECK(s[0].spent == Money::from_micros(6'945));     // the whole day for team search
  CHECK(s[1].spent == Money::from_micros(2 * 1'389));  // only hour 01:00 for key-2
  CHECK(!t.check({"search", "key-1", "classify"}).allowed);
}

TEST_CASE("kill -9 after append_sync acknowledgements loses no acknowledged row") {
  TempDir dir;
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(FRUGAL_LEDGER_CRASH_CHILD, FRUGAL_LEDGER_CRASH_CHILD, dir.path().c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  REQUIRE(in);
  std::vector<std::string> acked;
  char line[64];
  bool killed = false;
  while (std::fgets(line, sizeof line, in)) {
    std::string id(line);
    if (!id.empty() && id.back() == '\n') id.pop_back();
    else continue;  // a torn last line was never fully acknowledged
    acked.push_back(id);
    if (!killed && acked.size() == 300) {
      REQUIRE(kill(pid, SIGKILL) == 0);
      killed = true;
    }
  }
  std::fclose(in);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(killed);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  auto l = open_ledger(dir.path());
  auto rows = l->scan(0, INT64_MAX, 1'000'000);
  REQUIRE(rows.ok());
  std::set<std::string> have;
  for (const auto& r : *rows) have.insert(r.request_id);
  size_t missing = 0;
  for (const auto& id : acked) missing += !have.count(id);
  CHECK(missing == 0);
  CHECK(rows->size() >= acked.size());
  // Rollups are in the same WriteBatch as their rows: the totals agree with the rows.
  auto q = l->query(0, INT64_MAX, {});
  CHECK(q->totals.requests == static_cast<int64_t>(rows->size()));
  MESSAGE("acknowledged " << acked.size() << ", recovered " << rows->size());
}

namespace {

struct QuietLogger : rocksdb::Logger {
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};
struct NoAutoRecovery : rocksdb::EventListener {
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status, bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

// A ledger over a DB whose disk can be made full (tests/support/full_fs.h).
struct FullDiskLedger {
  TempDir dir;
  std::shared_ptr<frugal::test::FullFs> fs = frugal::test::FullFs::make();
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  std::unique_ptr<Ledger> ledger;

  explicit FullDiskLedger(LedgerOptions o) {
    rocksdb::DBOptions dbo;
    dbo.create_if_missing = true;
    dbo.create_missing_column_families = true;
    dbo.env = fs->env();
    // As cache::Store configures it: no LOG file (the full disk would break it) and no
    // automatic recovery (resume() below stands for the Store's resumer).
    dbo.info_log = std::make_shared<QuietLogger>();
    dbo.listeners.push_back(std::make_shared<NoAutoRecovery>());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs{
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {kLedgerCf, ledger_cf_options()},
        {kRollupsCf, rollups_cf_options()}};
    REQUIRE(rocksdb::DB::Open(dbo, dir.path(), cfs, &h, &db).ok());
    auto l = Ledger::open(db, h[1], h[2], o);
    REQUIRE(l.ok());
    ledger = std::move(*l);
  }
  ~FullDiskLedger() {
    fs->full = false;
    ledger.reset();
    for (auto* x : h) db->DestroyColumnFamilyHandle(x);
    delete db;
  }
  // What cache::Store's resumer does once the disk has room (bounded).
  void resume() {
    fs->full = false;
    rocksdb::Status s;
    for (int i = 0; i < 1000; ++i) {
      s = db->Resume();
      if (s.ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("DB::Resume() kept failing: " << s.ToString());
  }
  template <class Pred>
  bool poll(Pred pred) {
    for (int i = 0; i < 1000; ++i) {  // 10 s
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
  }
};

}  // namespace

TEST_CASE("rows whose write fails are held in memory, retried, and written once the disk has room") {
  LedgerOptions o;
  o.retry_interval_us = 10'000;
  FullDiskLedger f(o);
  REQUIRE(f.ledger->append_sync(two_tier_record("before", kH)).ok());
  f.fs->full = true;
  std::atomic<int> failed{0};
  const std::function<Ledger::OnWritten()> make = [&] {
    return [&](bool ok) {
      if (!ok) ++failed;
    };
  };
  // The inline path (the first row) and the queued one (the rest: rows are held now).
  for (int i = 0; i < 10; ++i) {
    LedgerRecord r = two_tier_record(numbered("held-", i), kH + 1 + i);
    CHECK_FALSE(f.ledger->append_durable(std::move(r), make));
  }
  CHECK(f.ledger->append_sync(two_tier_record("sync-held", kH + 20)).error().message.find("disk full") !=
        std::string::npos);
  REQUIRE(f.poll([&] { return failed.load() == 10; }));
  LedgerStats st = f.ledger->stats();
  CHECK(st.held == 11);
  CHECK(st.dropped == 0);
  CHECK(st.write_errors >= 11);
  // Retries while the disk stays full keep the rows.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(f.ledger->stats().held == 11);

  f.resume();
  REQUIRE(f.poll([&] { return f.ledger->stats().held == 0; }));
  st = f.ledger->stats();
  CHECK(st.retried == 11);
  CHECK(st.dropped == 0);
  auto rows = f.ledger->scan(kH, kH + kHour, 100);
  REQUIRE(rows.ok());
  std::set<std::string> ids;
  for (const auto& r : *rows) ids.insert(r.request_id);
  CHECK(ids.size() == 12);
  CHECK(ids.count("before") == 1);
  CHECK(ids.count("sync-held") == 1);
  for (int i = 0; i < 10; ++i) CHECK(ids.count(numbered("held-", i)) == 1);
  // Rollups were held with their rows: the totals count every request once.
  auto q = f.ledger->query(kH, kH + kHour, {});
  REQUIRE(q.ok());
  CHECK(q->totals.requests == 12);
  // New rows are written inline again.
  const uint64_t inline_before = f.ledger->stats().written_inline;
  CHECK(f.ledger->append_durable(two_tier_record("after", kH + 30), make));
  CHECK(f.ledger->stats().written_inline == inline_before + 1);
}

TEST_CASE("held rows are bounded: past held_capacity the newest are dropped and counted") {
  LedgerOptions o;
  o.retry_interval_us = 10'000;
  o.held_capacity = 4;
  FullDiskLedger f(o);
  REQUIRE(f.ledger->append_sync(two_tier_record("a-0", kH)).ok());  // see cache::Store, write_wal_anchor
  f.fs->full = true;
  for (int i = 0; i < 10; ++i) (void)f.ledger->append(two_tier_record(numbered("b-", i), kH + 1 + i));
  REQUIRE(f.poll([&] { return f.ledger->stats().held + f.ledger->stats().dropped == 10; }));
  CHECK(f.ledger->stats().held == 4);
  CHECK(f.ledger->stats().dropped == 6);
  f.resume();
  REQUIRE(f.poll([&] { return f.ledger->stats().held == 0; }));
  auto rows = f.ledger->scan(kH, kH + kHour, 100);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 5);
  CHECK(rows->at(1).request_id == "b-0");  // the oldest are kept
  CHECK(rows->back().request_id == "b-3");
}

TEST_CASE("close() with the disk still full drops the held rows and counts them") {
  LedgerOptions o;
  o.retry_interval_us = 10'000;
  FullDiskLedger f(o);
  f.fs->full = true;
  for (int i = 0; i < 3; ++i) (void)f.ledger->append(two_tier_record(numbered("c-", i), kH + i));
  REQUIRE(f.poll([&] { return f.ledger->stats().held == 3; }));
  f.ledger->close();  // terminates although nothing can be written
  CHECK(f.ledger->stats().held == 0);
  CHECK(f.ledger->stats().dropped == 3);
}
