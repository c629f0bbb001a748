#include "router/ledger.h"

#include <rocksdb/merge_operator.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <simdjson.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <map>
#include <unordered_map>

#include "core/json.h"
#include "policies/budget.h"

namespace frugal::router {
namespace {

constexpr int kRecordVersion = 1;     // the JSON form (record_json), as stored before v2
constexpr uint8_t kRowVersion = 2;     // the binary stored form (encode_record)
constexpr uint8_t kTotalsVersion = 1;
constexpr int64_t kHourUs = 3'600'000'000;

void put_be64(std::string& out, int64_t v) {
  const auto u = static_cast<uint64_t>(v);
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((u >> (8 * (7 - i))) & 0xff);
  out.append(b, 8);
}

int64_t get_be64(std::string_view s) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(s[i]);
  return static_cast<int64_t>(u);
}

void put_varint(std::string& out, uint64_t v) {
  if (v < 0x80) {  // most values: small counts, zeros, short lengths
    out.push_back(static_cast<char>(v));
    return;
  }
  char b[10];
  size_t n = 0;
  while (v >= 0x80) {
    b[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  b[n++] = static_cast<char>(v);
  out.append(b, n);
}

bool get_varint(std::string_view& s, uint64_t& v, int max_bytes = 5) {
  v = 0;
  for (int shift = 0; shift < 7 * max_bytes && !s.empty(); shift += 7) {
    const auto b = static_cast<unsigned char>(s.front());
    s.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

void put_field(std::string& out, std::string_view f) {
  put_varint(out, f.size());
  out.append(f);
}

bool get_field(std::string_view& s, std::string& f) {
  uint64_t n;
  if (!get_varint(s, n) || n > s.size()) return false;
  f.assign(s.substr(0, n));
  s.remove_prefix(n);
  return true;
}

int64_t floor_hour(int64_t t) { return (t >= 0 ? t / kHourUs : (t - kHourUs + 1) / kHourUs) * kHourUs; }

// The counters of CostTotals in their stored order. Append new ones at the end only.
constexpr size_t kTotalsFields = 13;
void totals_to_array(const CostTotals& t, int64_t (&a)[kTotalsFields]) {
  const int64_t v[kTotalsFields] = {t.requests, t.attempts, t.accepted, t.rejected, t.errors,
                                    t.cache_hits, t.input_tokens, t.cached_input_tokens,
                                    t.cache_write_5m_tokens, t.cache_write_1h_tokens,
                                    t.output_tokens, t.cost.micros, t.baseline.micros};
  std::copy(std::begin(v), std::end(v), a);
}
CostTotals totals_from_array(const int64_t (&a)[kTotalsFields]) {
  CostTotals t;
  t.requests = a[0];
  t.attempts = a[1];
  t.accepted = a[2];
  t.rejected = a[3];
  t.errors = a[4];
  t.cache_hits = a[5];
  t.input_tokens = a[6];
  t.cached_input_tokens = a[7];
  t.cache_write_5m_tokens = a[8];
  t.cache_write_1h_tokens = a[9];
  t.output_tokens = a[10];
  t.cost = Money{a[11]};
  t.baseline = Money{a[12]};
  return t;
}

// Sums counters field by field; operands may differ in length (newer writers append
// fields), the result has the longer length.
class RollupSumOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    if (value.size() < 1 || (value.size() - 1) % 8 != 0) return false;
    if (!existing) {
      new_value->assign(value.data(), value.size());
      return true;
    }
    if (existing->size() < 1 || (existing->size() - 1) % 8 != 0) return false;
    const size_t n = std::max(existing->size(), value.size());
    new_value->assign(n, '\0');
    (*new_value)[0] = static_cast<char>(kTotalsVersion);
    for (size_t off = 1; off < n; off += 8) {
      int64_t sum = 0;
      for (const rocksdb::Slice* s : {existing, &value}) {
        if (off + 8 > s->size()) continue;
        uint64_t u = 0;
        for (int i = 7; i >= 0; --i) u = (u << 8) | static_cast<unsigned char>(s->data()[off + i]);
        sum += static_cast<int64_t>(u);
      }
      const auto u = static_cast<uint64_t>(sum);
      for (int i = 0; i < 8; ++i) (*new_value)[off + i] = static_cast<char>((u >> (8 * i)) & 0xff);
    }
    return true;
  }
  const char* Name() const override { return "frugal.RollupSum.v1"; }
};

const char* status_name(TierStatus s) {
  switch (s) {
    case TierStatus::kAccepted: return "accepted";
    case TierStatus::kRejected: return "rejected";
    case TierStatus::kError: return "error";
    case TierStatus::kVerifier: return "verifier";
  }
  return "error";
}

const char* cache_name(CacheOutcome c) {
  switch (c) {
    case CacheOutcome::kNone: return "none";
    case CacheOutcome::kHit: return "hit";
    case CacheOutcome::kMiss: return "miss";
    case CacheOutcome::kBypass: return "bypass";
  }
  return "none";
}

void usage_json(JsonWriter& w, const Usage& u) {
  w.begin_object();
  w.key("in").value(u.input_tokens);
  w.key("cached").value(u.cached_input_tokens);
  w.key("cw5m").value(u.cache_write_5m_tokens);
  w.key("cw1h").value(u.cache_write_1h_tokens);
  w.key("out").value(u.output_tokens);
  w.key("reasoning").value(u.reasoning_tokens);
  w.key("reported").value(u.reported);
  w.end_object();
}

Error corrupt(const std::string& what) {
  return make_error(ErrorKind::kInternal, "ledger record: " + what);
}

// The binary row: signed integers zigzag varints, strings length-prefixed.
void put_sv(std::string& out, int64_t v) {
  put_varint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

bool get_sv(std::string_view& s, int64_t& v) {
  uint64_t u;
  if (!get_varint(s, u, 10)) return false;
  v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  return true;
}

bool get_byte(std::string_view& s, uint8_t& b) {
  if (s.empty()) return false;
  b = static_cast<uint8_t>(s.front());
  s.remove_prefix(1);
  return true;
}

Result<LedgerRecord> decode_binary(std::string_view s) {
  LedgerRecord r;
  uint8_t b = 0;
  uint64_t n = 0;
  int64_t v = 0;
  bool ok = get_byte(s, b) && b == kRowVersion && get_field(s, r.request_id) && get_sv(s, r.wall_us) &&
            get_field(s, r.key_id) && get_field(s, r.team) && get_field(s, r.request_type) &&
            get_field(s, r.route) && get_field(s, r.dialect) && get_varint(s, n) && n <= s.size();
  for (uint64_t i = 0; ok && i < n; ++i) {
    LedgerTier t;
    Usage& u = t.usage;
    uint8_t status = 0, reported = 0, has_score = 0;
    ok = get_field(s, t.model) && get_field(s, t.provider) && get_sv(s, u.input_tokens) &&
         get_sv(s, u.cached_input_tokens) && get_sv(s, u.cache_write_5m_tokens) &&
         get_sv(s, u.cache_write_1h_tokens) && get_sv(s, u.output_tokens) && get_sv(s, u.reasoning_tokens) &&
         get_byte(s, reported) && reported <= 1 && get_sv(s, t.cost.micros) && get_sv(s, t.latency_us) &&
         get_sv(s, t.ttft_us) && get_byte(s, status) && status <= static_cast<uint8_t>(TierStatus::kVerifier) &&
         get_byte(s, has_score) && has_score <= 1;
    if (ok && has_score) {
      ok = s.size() >= 8;
      if (ok) {
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits |= static_cast<uint64_t>(static_cast<unsigned char>(s[k])) << (8 * k);
        t.score = std::bit_cast<double>(bits);
        s.remove_prefix(8);
      }
    }
    ok = ok && get_field(s, t.reason);
    u.reported = reported != 0;
    t.status = static_cast<TierStatus>(status);
    if (ok) r.tiers.push_back(std::move(t));
  }
  uint8_t cache = 0, cancelled = 0;
  ok = ok && get_byte(s, cache) && cache <= static_cast<uint8_t>(CacheOutcome::kBypass) &&
       get_field(s, r.answer_model) && get_sv(s, r.total_cost.micros) && get_sv(s, r.baseline.micros) &&
       get_sv(s, r.savings.micros) && get_sv(s, v) && get_byte(s, cancelled) && cancelled <= 1 && s.empty();
  if (!ok) return corrupt("truncated or malformed binary row");
  r.cache = static_cast<CacheOutcome>(cache);
  r.status_code = static_cast<int>(v);
  r.stream_cancelled = cancelled != 0;
  return r;
}

}  // namespace

namespace {

void append_ledger_key(std::string& k, int64_t wall_us, std::string_view request_id) {
  k.reserve(k.size() + 8 + request_id.size());
  put_be64(k, wall_us);
  k.append(request_id);
}

void append_record(std::string& out, const LedgerRecord& r) {
  out.reserve(out.size() + 96 + r.request_id.size() + r.key_id.size() + r.team.size() + r.request_type.size() +
              r.route.size() + r.answer_model.size() + 64 * r.tiers.size());
  out += static_cast<char>(kRowVersion);
  put_field(out, r.request_id);
  put_sv(out, r.wall_us);
  for (const std::string* f : {&r.key_id, &r.team, &r.request_type, &r.route, &r.dialect}) put_field(out, *f);
  put_varint(out, r.tiers.size());
  for (const LedgerTier& t : r.tiers) {
    put_field(out, t.model);
    put_field(out, t.provider);
    const Usage& u = t.usage;
    for (int64_t v : {u.input_tokens, u.cached_input_tokens, u.cache_write_5m_tokens, u.cache_write_1h_tokens,
                      u.output_tokens, u.reasoning_tokens})
      put_sv(out, v);
    out += static_cast<char>(u.reported ? 1 : 0);
    put_sv(out, t.cost.micros);
    put_sv(out, t.latency_us);
    put_sv(out, t.ttft_us);
    out += static_cast<char>(t.status);
    out += static_cast<char>(t.score ? 1 : 0);
    if (t.score) {
      const auto bits = std::bit_cast<uint64_t>(*t.score);
      for (int k = 0; k < 8; ++k) out += static_cast<char>((bits >> (8 * k)) & 0xff);
    }
    put_field(out, t.reason);
  }
  out += static_cast<char>(r.cache);
  put_field(out, r.answer_model);
  put_sv(out, r.total_cost.micros);
  put_sv(out, r.baseline.micros);
  put_sv(out, r.savings.micros);
  put_sv(out, r.status_code);
  out += static_cast<char>(r.stream_cancelled ? 1 : 0);
}

}  // namespace

std::string ledger_key(int64_t wall_us, std::string_view request_id) {
  std::string k;
  append_ledger_key(k, wall_us, request_id);
  return k;
}

std::string encode_record(const LedgerRecord& r) {
  std::string out;
  append_record(out, r);
  return out;
}

std::string record_json(const LedgerRecord& r) {
  std::string out;
  out.reserve(256 + 160 * r.tiers.size());
  JsonWriter w(out);
  w.begin_object();
  w.key("v").value(kRecordVersion);
  w.key("id").value(r.request_id);
  w.key("t").value(r.wall_us);
  w.key("key").value(r.key_id);
  w.key("team").value(r.team);
  w.key("type").value(r.request_type);
  w.key("route").value(r.route);
  w.key("dialect").value(r.dialect);
  w.key("tiers").begin_array();
  for (const auto& t : r.tiers) {
    w.begin_object();
    w.key("model").value(t.model);
    w.key("provider").value(t.provider);
    w.key("usage");
    usage_json(w, t.usage);
    w.key("cost").value(t.cost.micros);
    w.key("latency_us").value(t.latency_us);
    w.key("ttft_us").value(t.ttft_us);
    w.key("status").value(status_name(t.status));
    w.key("score");
    if (t.score && std::isfinite(*t.score)) w.value(*t.score);
    else w.null();
    w.key("reason").value(t.reason);
    w.end_object();
  }
  w.end_array();
  w.key("cache").value(cache_name(r.cache));
  w.key("answer_model").value(r.answer_model);
  w.key("cost").value(r.total_cost.micros);
  w.key("baseline").value(r.baseline.micros);
  w.key("savings").value(r.savings.micros);
  w.key("status").value(r.status_code);
  w.key("cancelled").value(r.stream_cancelled);
  w.end_object();
  return out;
}

Result<LedgerRecord> decode_record(std::string_view bytes) {
  if (!bytes.empty() && static_cast<uint8_t>(bytes.front()) == kRowVersion) return decode_binary(bytes);
  // Rows written before v2 are JSON (record_json's form).
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  // A default string_view has no data pointer, which simdjson must not be given (UBSan).
  if (auto err = parser.parse(bytes.empty() ? "" : bytes.data(), bytes.size()).get(root))
    return corrupt(std::string("not JSON: ") + simdjson::error_message(err));
  int64_t v = 0;
  if (root["v"].get(v) || v != kRecordVersion)
    return corrupt("unsupported version " + std::to_string(v));
  LedgerRecord r;
  bool ok = true;
  auto str = [&](simdjson::dom::element e, const char* k, std::string& dst) {
    std::string_view s;
    if (e[k].get(s)) ok = false;
    else dst.assign(s);
  };
  auto num = [&](simdjson::dom::element e, const char* k, int64_t& dst) {
    if (e[k].get(dst)) ok = false;
  };
  str(root, "id", r.request_id);
  num(root, "t", r.wall_us);
  str(root, "key", r.key_id);
  str(root, "team", r.team);
  str(root, "type", r.request_type);
  str(root, "route", r.route);
  str(root, "dialect", r.dialect);
  simdjson::dom::array tiers;
  if (root["tiers"].get(tiers)) return corrupt("missing tiers");
  for (simdjson::dom::element te : tiers) {
    LedgerTier t;
    str(te, "model", t.model);
    str(te, "provider", t.provider);
    simdjson::dom::element u;
    if (te["usage"].get(u)) return corrupt("missing usage");
    num(u, "in", t.usage.input_tokens);
    num(u, "cached", t.usage.cached_input_tokens);
    num(u, "cw5m", t.usage.cache_write_5m_tokens);
    num(u, "cw1h", t.usage.cache_write_1h_tokens);
    num(u, "out", t.usage.output_tokens);
    num(u, "reasoning", t.usage.reasoning_tokens);
    if (u["reported"].get(t.usage.reported)) ok = false;
    num(te, "cost", t.cost.micros);
    num(te, "latency_us", t.latency_us);
    num(te, "ttft_us", t.ttft_us);
    std::string status;
    str(te, "status", status);
    t.status = status == "accepted"   ? TierStatus::kAccepted
               : status == "rejected" ? TierStatus::kRejected
               : status == "verifier" ? TierStatus::kVerifier
                                      : TierStatus::kError;
    simdjson::dom::element score;
    if (!te["score"].get(score) && !score.is_null()) {
      double d;
      if (score.get(d)) ok = false;
      else t.score = d;
    }
    str(te, "reason", t.reason);
    r.tiers.push_back(std::move(t));
  }
  std::string cache;
  str(root, "cache", cache);
  r.cache = cache == "hit" ? CacheOutcome::kHit
            : cache == "miss" ? CacheOutcome::kMiss
            : cache == "bypass" ? CacheOutcome::kBypass : CacheOutcome::kNone;
  str(root, "answer_model", r.answer_model);
  num(root, "cost", r.total_cost.micros);
  num(root, "baseline", r.baseline.micros);
  num(root, "savings", r.savings.micros);
  int64_t status = 0;
  num(root, "status", status);
  r.status_code = static_cast<int>(status);
  if (root["cancelled"].get(r.stream_cancelled)) ok = false;
  if (!ok) return corrupt("missing or mistyped field");
  return r;
}

namespace {
void assign_rollup_key(std::string& out, int64_t hour_us, std::initializer_list<std::string_view> fields) {
  size_t n = 8;
  for (std::string_view f : fields) n += f.size() + 5;
  out.clear();
  out.reserve(n);
  put_be64(out, hour_us);
  for (std::string_view f : fields) put_field(out, f);
}
}  // namespace

std::string encode_rollup_key(const RollupKey& k) {
  std::string out;
  assign_rollup_key(out, k.hour_us, {k.request_type, k.route, k.model, k.key, k.team});
  return out;
}

std::optional<RollupKey> decode_rollup_key(std::string_view s) {
  if (s.size() < 8) return std::nullopt;
  RollupKey k;
  k.hour_us = get_be64(s);
  s.remove_prefix(8);
  for (std::string* f : {&k.request_type, &k.route, &k.model, &k.key, &k.team})
    if (!get_field(s, *f)) return std::nullopt;
  if (!s.empty()) return std::nullopt;
  return k;
}

std::string encode_totals(const CostTotals& t) {
  int64_t a[kTotalsFields];
  totals_to_array(t, a);
  std::string out(1 + 8 * kTotalsFields, '\0');
  out[0] = static_cast<char>(kTotalsVersion);
  for (size_t f = 0; f < kTotalsFields; ++f) {
    const auto u = static_cast<uint64_t>(a[f]);
    for (int i = 0; i < 8; ++i) out[1 + 8 * f + i] = static_cast<char>((u >> (8 * i)) & 0xff);
  }
  return out;
}

CostTotals decode_totals(std::string_view s) {
  int64_t a[kTotalsFields] = {};
  for (size_t f = 0; f < kTotalsFields && 1 + 8 * (f + 1) <= s.size(); ++f) {
    uint64_t u = 0;
    for (int i = 7; i >= 0; --i) u = (u << 8) | static_cast<unsigned char>(s[1 + 8 * f + i]);
    a[f] = static_cast<int64_t>(u);
  }
  return totals_from_array(a);
}

namespace {
// A record's rollup deltas per model (the tiers' models and the answer's), in first-seen
// order; the models point into the record.
std::vector<std::pair<const std::string*, CostTotals>> model_deltas(const LedgerRecord& r) {
  std::vector<std::pair<const std::string*, CostTotals>> out;
  out.reserve(r.tiers.size() + 1);
  auto slot = [&](const std::string& model) -> CostTotals& {
    for (auto& [m, t] : out)
      if (*m == model) return t;
    return out.emplace_back(&model, CostTotals{}).second;
  };
  for (const auto& t : r.tiers) {
    CostTotals& c = slot(t.model);
    if (t.status != TierStatus::kVerifier) {  // a verifier call costs, but is no attempt
      ++c.attempts;
      if (t.status == TierStatus::kAccepted) ++c.accepted;
      else if (t.status == TierStatus::kRejected) ++c.rejected;
      else ++c.errors;
    }
    c.input_tokens += t.usage.input_tokens;
    c.cached_input_tokens += t.usage.cached_input_tokens;
    c.cache_write_5m_tokens += t.usage.cache_write_5m_tokens;
    c.cache_write_1h_tokens += t.usage.cache_write_1h_tokens;
    c.output_tokens += t.usage.output_tokens;
    c.cost += t.cost;
  }
  CostTotals& a = slot(r.answer_model);
  ++a.requests;
  if (r.cache == CacheOutcome::kHit) ++a.cache_hits;
  a.baseline += r.baseline;
  // The record's total is authoritative: if it differs from the tiers' sum (a cost
  // charged outside any tier, e.g. a verifier call), book the difference here.
  Money tier_sum;
  for (const auto& t : r.tiers) tier_sum += t.cost;
  a.cost += r.total_cost - tier_sum;
  return out;
}
}  // namespace

std::vector<std::pair<RollupKey, CostTotals>> rollup_deltas(const LedgerRecord& r) {
  std::vector<std::pair<RollupKey, CostTotals>> out;
  for (auto& [model, t] : model_deltas(r))
    out.emplace_back(RollupKey{floor_hour(r.wall_us), r.request_type, r.route, *model, r.key_id, r.team}, t);
  return out;
}

namespace {
// Flushes checksum every block: Debian's RocksDB computes CRC32C in software (it is built
// without SSE4.2), XXH3 is several times cheaper. Files keep their own checksum type, so
// existing data stays readable.
rocksdb::BlockBasedTableOptions cheap_checksums() {
  rocksdb::BlockBasedTableOptions t;
  t.checksum = rocksdb::kXXH3;
  return t;
}
}  // namespace

rocksdb::ColumnFamilyOptions ledger_cf_options() {
  rocksdb::ColumnFamilyOptions o;
  o.compression = rocksdb::kNoCompression;  // rows are small; keep writes cheap
  // Keys start with the request's start time, so each lands near the end of the
  // memtable: with a shared one-byte prefix RocksDB starts each insert from the previous
  // one. Rows finish out of start order, though, and callgrind still counts ~16 key
  // comparisons per insert (session 9); the hint saved ~1% of instructions (session 8).
  o.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(1));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(cheap_checksums()));
  return o;
}

rocksdb::ColumnFamilyOptions rollups_cf_options() {
  rocksdb::ColumnFamilyOptions o;
  o.merge_operator = std::make_shared<RollupSumOperator>();
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(cheap_checksums()));
  return o;
}

// ---- Ledger -----------------------------------------------------------------

struct Ledger::SyncWaiter {
  bool done = false;
  std::string error;  // empty: written
};

Ledger::Ledger(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* ledger_cf,
               rocksdb::ColumnFamilyHandle* rollups_cf, LedgerOptions options)
    : db_(db), ledger_cf_(ledger_cf), rollups_cf_(rollups_cf), options_(options) {
  if (options_.max_batch == 0) options_.max_batch = 1;
  if (options_.queue_capacity == 0) options_.queue_capacity = 1;
}

Result<std::unique_ptr<Ledger>> Ledger::open(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* ledger_cf,
                                             rocksdb::ColumnFamilyHandle* rollups_cf,
                                             LedgerOptions options) {
  if (!db || !ledger_cf || !rollups_cf)
    return make_error(ErrorKind::kInternal, "ledger: null DB or column family handle");
  std::unique_ptr<Ledger> l(new Ledger(db, ledger_cf, rollups_cf, options));
  l->writer_ = std::thread([p = l.get()] { p->run_writer(); });
  return l;
}

Result<std::unique_ptr<Ledger>> Ledger::open_standalone(const std::string& path, LedgerOptions options) {
  rocksdb::DBOptions dbo;
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs{
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kLedgerCf, ledger_cf_options()},
      {kRollupsCf, rollups_cf_options()}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(dbo, path, cfs, &handles, &raw);
  if (!s.ok()) return make_error(ErrorKind::kInternal, "ledger: cannot open " + path + ": " + s.ToString());
  std::unique_ptr<Ledger> l(new Ledger(raw, handles[1], handles[2], options));
  l->owned_db_.reset(raw);
  l->owned_handles_ = std::move(handles);
  l->writer_ = std::thread([p = l.get()] { p->run_writer(); });
  return l;
}

Result<std::unique_ptr<Ledger>> Ledger::open_read_only(const std::string& path) {
  std::vector<std::string> names;
  rocksdb::DBOptions dbo;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(dbo, path, &names);
  if (!s.ok()) return make_error(ErrorKind::kNotFound, "ledger: cannot open " + path + ": " + s.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names)
    cfs.emplace_back(n, n == kRollupsCf ? rollups_cf_options() : n == kLedgerCf ? ledger_cf_options()
                                                                                 : rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(dbo, path, cfs, &handles, &raw);
  if (!s.ok()) return make_error(ErrorKind::kInternal, "ledger: cannot open " + path + " read-only: " + s.ToString());
  rocksdb::ColumnFamilyHandle* ledger_cf = nullptr;
  rocksdb::ColumnFamilyHandle* rollups_cf = nullptr;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == kLedgerCf) ledger_cf = handles[i];
    if (names[i] == kRollupsCf) rollups_cf = handles[i];
  }
  std::unique_ptr<Ledger> l(new Ledger(raw, ledger_cf, rollups_cf, LedgerOptions{}));
  l->owned_db_.reset(raw);
  l->owned_handles_ = std::move(handles);
  l->closing_ = true;  // no writer thread: appends are refused
  if (!ledger_cf || !rollups_cf)
    return make_error(ErrorKind::kNotFound, "ledger: " + path + " has no ledger (column families '" +
                                                std::string(kLedgerCf) + "' and '" + kRollupsCf + "')");
  return l;
}

Ledger::~Ledger() {
  close();
  if (owned_db_) {
    for (auto* h : owned_handles_) owned_db_->DestroyColumnFamilyHandle(h);
    owned_db_->Close();
  }
}

uint64_t Ledger::enqueue_locked(LedgerRecord record, std::shared_ptr<SyncWaiter> waiter,
                                std::function<void(bool)> on_written) {
  const uint64_t seq = ++next_seq_;
  queue_.push_back(Pending{std::move(record), seq, std::move(waiter), std::move(on_written)});
  ++stats_.appended;
  return seq;
}

bool Ledger::append(LedgerRecord record) {
  {
    std::lock_guard lock(mu_);
    if (closing_ || queue_.size() >= options_.queue_capacity) {
      ++stats_.dropped;
      return false;
    }
    enqueue_locked(std::move(record), nullptr);
  }
  work_cv_.notify_one();
  return true;
}

bool Ledger::append(LedgerRecord record, std::function<void(bool ok)> on_written) {
  {
    std::lock_guard lock(mu_);
    if (closing_ || queue_.size() >= options_.queue_capacity) {
      ++stats_.dropped;
      if (on_written) on_written(false);
      return false;
    }
    enqueue_locked(std::move(record), nullptr, std::move(on_written));
  }
  work_cv_.notify_one();
  return true;
}

bool Ledger::append_durable(LedgerRecord record, const std::function<OnWritten()>& make_on_written) {
  return append_durable(std::span(&record, 1), make_on_written);
}

bool Ledger::append_durable(std::span<LedgerRecord> records, const std::function<OnWritten()>& make_on_written) {
  if (records.empty()) return true;
  bool inline_ok = false;
  {
    std::lock_guard lock(mu_);
    inline_ok = !closing_ && !writing_ && queue_.empty() && held_.empty() && !options_.sync &&
                options_.write_delay_us == 0;
    if (inline_ok) ++inline_writers_;
  }
  // Queued behind the writer: in order, with the callback on the last row (the writer
  // takes the queue in order, so it reports the whole span). Past the queue bound: the
  // rows must not be lost.
  const auto enqueue_all_locked = [&] {  // false: closed, nothing queued
    if (closing_) {
      stats_.dropped += records.size();
      return false;
    }
    for (size_t i = 0; i + 1 < records.size(); ++i) enqueue_locked(std::move(records[i]), nullptr);
    enqueue_locked(std::move(records.back()), nullptr, make_on_written());
    return true;
  };
  const auto queued = [&](bool ok) {
    if (ok) work_cv_.notify_one();
    else if (OnWritten on_written = make_on_written()) on_written(false);
    return false;
  };
  if (!inline_ok) {
    bool ok;
    {
      std::lock_guard lock(mu_);
      ok = enqueue_all_locked();
    }
    return queued(ok);
  }
  rocksdb::WriteBatch wb;
  std::vector<const LedgerRecord*> ptrs;
  ptrs.reserve(records.size());
  for (const LedgerRecord& r : records) ptrs.push_back(&r);
  add_rows(wb, ptrs);
  rocksdb::WriteOptions wo;
  wo.no_slowdown = true;  // never stall an I/O thread: the writer takes it instead
  const rocksdb::Status s = db_->Write(wo, &wb);
  bool requeued = false;
  {
    std::lock_guard lock(mu_);
    --inline_writers_;
    // RocksDB would have stalled: the writer writes them (queued before close() can
    // see this call gone).
    if (s.IsIncomplete()) requeued = enqueue_all_locked();
    else {
      stats_.appended += records.size();
      ++stats_.batches;
      if (s.ok()) {
        stats_.written += records.size();
        stats_.written_inline += records.size();
      } else {
        ++error_count_;
        stats_.write_errors += records.size();
        last_error_ = "ledger write failed: " + s.ToString();
        for (LedgerRecord& r : records) hold_locked(std::move(r));
        next_retry_ = std::chrono::steady_clock::now() + std::chrono::microseconds(options_.retry_interval_us);
      }
    }
  }
  done_cv_.notify_all();  // close() waits for inline writers
  if (!s.ok() && !s.IsIncomplete()) work_cv_.notify_one();  // the writer retries the held rows
  if (s.IsIncomplete()) return queued(requeued);
  if (!s.ok()) {
    if (OnWritten on_written = make_on_written()) on_written(false);
    return false;
  }
  return true;
}

void Ledger::add_rows(rocksdb::WriteBatch& wb, std::span<const LedgerRecord* const> records) const {
  // Rows are Put one by one; rollup deltas are summed per key first, so a batch of
  // requests of the same hour, type, route, model, key and team is one Merge.
  // One key, value and rollup-key buffer for the batch (wb copies what it is given).
  std::unordered_map<std::string, CostTotals> rollups;
  std::string key, value, rollup_key;
  for (const LedgerRecord* r : records) {
    key.clear();
    append_ledger_key(key, r->wall_us, r->request_id);
    value.clear();
    append_record(value, *r);
    wb.Put(ledger_cf_, key, value);
    for (const auto& [model, t] : model_deltas(*r)) {
      assign_rollup_key(rollup_key, floor_hour(r->wall_us), {r->request_type, r->route, *model, r->key_id, r->team});
      rollups[rollup_key] += t;
    }
  }
  for (const auto& [k, t] : rollups) wb.Merge(rollups_cf_, k, encode_totals(t));
}

Result<void> Ledger::append_sync(LedgerRecord record) {
  auto waiter = std::make_shared<SyncWaiter>();
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return closing_ || queue_.size() < options_.queue_capacity; });
  if (closing_) return make_error(ErrorKind::kUnavailable, "ledger is closed");
  enqueue_locked(std::move(record), waiter);
  work_cv_.notify_one();
  done_cv_.wait(lock, [&] { return waiter->done; });
  if (!waiter->error.empty()) return make_error(ErrorKind::kInternal, waiter->error);
  return {};
}

Result<void> Ledger::flush() {
  std::unique_lock lock(mu_);
  const uint64_t target = next_seq_;
  const uint64_t errors_before = error_count_;
  work_cv_.notify_one();
  done_cv_.wait(lock, [&] { return written_seq_ >= target; });
  if (error_count_ != errors_before) return make_error(ErrorKind::kInternal, last_error_);
  return {};
}

void Ledger::close() {
  {
    std::unique_lock lock(mu_);
    if (closing_ && !writer_.joinable()) return;
    closing_ = true;
    // An inline write that RocksDB refuses is queued: let those land before the
    // writer drains and stops.
    done_cv_.wait(lock, [&] { return inline_writers_ == 0; });
  }
  work_cv_.notify_one();
  done_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void Ledger::hold_locked(LedgerRecord&& record) {
  if (held_.size() >= options_.held_capacity) {
    ++stats_.dropped;
    return;
  }
  held_.push_back(std::move(record));
}

void Ledger::run_writer() {
  using SteadyClock = std::chrono::steady_clock;
  std::vector<Pending> batch;
  std::vector<LedgerRecord> retry;  // held rows written again
  std::vector<const LedgerRecord*> records;
  rocksdb::WriteBatch wb;
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  const auto retry_interval = std::chrono::microseconds(std::max<int64_t>(options_.retry_interval_us, 1'000));
  for (;;) {
    batch.clear();
    retry.clear();
    {
      std::unique_lock lock(mu_);
      const auto retry_due = [&] { return !held_.empty() && (closing_ || SteadyClock::now() >= next_retry_); };
      while (!retry_due() && queue_.empty()) {
        if (closing_) return;  // drained, nothing held
        if (held_.empty()) work_cv_.wait(lock);
        else work_cv_.wait_until(lock, next_retry_);
      }
      if (retry_due()) {
        const size_t n = std::min(held_.size(), options_.max_batch);
        for (size_t i = 0; i < n; ++i) {
          retry.push_back(std::move(held_.front()));
          held_.pop_front();
        }
        retrying_ = n;
      } else {
        // No pause to gather more: while this batch is written the next one queues
        // (group commit), and a pause would leave the cores idle with every request of
        // a closed loop waiting here.
        const size_t n = std::min(queue_.size(), options_.max_batch);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      writing_ = true;
    }
    done_cv_.notify_all();  // space freed for blocked append_sync callers
    wb.Clear();
    records.clear();
    for (const auto& r : retry) records.push_back(&r);
    for (const auto& p : batch) records.push_back(&p.record);
    add_rows(wb, records);
    if (options_.write_delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(options_.write_delay_us));
    const rocksdb::Status s = db_->Write(wo, &wb);
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      retrying_ = 0;
      ++stats_.batches;
      const size_t n = records.size();
      if (s.ok()) {
        stats_.written += n;
        stats_.retried += retry.size();
        if (!held_.empty()) next_retry_ = SteadyClock::now();  // the disk takes writes again
      } else {
        ++error_count_;
        stats_.write_errors += n;
        last_error_ = "ledger write failed: " + s.ToString();
        if (closing_) {
          stats_.dropped += n;  // nothing will retry them
        } else {
          // Retried rows go back in front, in order; new ones join behind.
          for (auto it = retry.rbegin(); it != retry.rend(); ++it) held_.push_front(std::move(*it));
          for (auto& p : batch) hold_locked(std::move(p.record));
          next_retry_ = SteadyClock::now() + retry_interval;
        }
      }
      for (auto& p : batch) {
        if (p.waiter) {
          p.waiter->done = true;
          if (!s.ok()) p.waiter->error = last_error_;
        }
      }
      if (!batch.empty()) written_seq_ = batch.back().seq;
    }
    done_cv_.notify_all();
    for (auto& p : batch)
      if (p.on_written) p.on_written(s.ok());
  }
}

Result<std::vector<LedgerRecord>> Ledger::scan(int64_t from_us, int64_t to_us, size_t limit) const {
  std::vector<LedgerRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), ledger_cf_));
  const std::string start = ledger_key(from_us, "");
  for (it->Seek(start); it->Valid() && out.size() < limit; it->Next()) {
    const rocksdb::Slice k = it->key();
    if (k.size() < 8 || get_be64(std::string_view(k.data(), 8)) >= to_us) break;
    auto r = decode_record(std::string_view(it->value().data(), it->value().size()));
    if (!r) return std::move(r).error();
    out.push_back(std::move(*r));
  }
  if (!it->status().ok()) return make_error(ErrorKind::kInternal, "ledger scan: " + it->status().ToString());
  return out;
}

Result<CostReport> Ledger::query(int64_t from_us, int64_t to_us, std::span<const GroupBy> group_by) const {
  CostReport rep;
  rep.from_us = from_us;
  rep.to_us = to_us;
  rep.group_by.assign(group_by.begin(), group_by.end());
  std::map<std::vector<std::string>, CostTotals> groups;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), rollups_cf_));
  std::string start;
  put_be64(start, floor_hour(from_us));
  std::vector<std::string> g;
  for (it->Seek(start); it->Valid(); it->Next()) {
    auto k = decode_rollup_key(std::string_view(it->key().data(), it->key().size()));
    if (!k) return make_error(ErrorKind::kInternal, "ledger query: malformed rollup key");
    if (k->hour_us >= to_us) break;
    const CostTotals t = decode_totals(std::string_view(it->value().data(), it->value().size()));
    g.clear();
    for (GroupBy gb : group_by) {
      switch (gb) {
        case GroupBy::kHour: g.push_back(policies::format_utc(k->hour_us)); break;
        case GroupBy::kRequestType: g.push_back(k->request_type); break;
        case GroupBy::kRoute: g.push_back(k->route); break;
        case GroupBy::kModel: g.push_back(k->model); break;
        case GroupBy::kKey: g.push_back(k->key); break;
        case GroupBy::kTeam: g.push_back(k->team); break;
      }
    }
    groups[g] += t;
    rep.totals += t;
  }
  if (!it->status().ok()) return make_error(ErrorKind::kInternal, "ledger query: " + it->status().ToString());
  for (auto& [key, t] : groups) rep.rows.push_back(CostRow{key, t});
  return rep;
}

LedgerStats Ledger::stats() const {
  std::lock_guard lock(mu_);
  LedgerStats s = stats_;
  s.held = held_.size() + retrying_;
  return s;
}

Result<void> restore_budgets(const Ledger& ledger, policies::BudgetTracker& tracker, int64_t now_us) {
  if (tracker.empty()) return {};
  // One query per hour of the longest current window (at most 744 for a month): the
  // hour is what restore() needs to place spend in a window.
  const int64_t from = floor_hour(tracker.restore_from_us());
  const GroupBy scope[] = {GroupBy::kTeam, GroupBy::kKey, GroupBy::kRequestType};
  for (int64_t h = from; h <= now_us; h += kHourUs) {
    auto rep = ledger.query(h, h + kHourUs, scope);
    if (!rep) return std::move(rep).error();
    for (const auto& row : rep->rows)
      tracker.restore(policies::BudgetFacts{row.group[0], row.group[1], row.group[2]}, h, row.totals.cost);
  }
  return {};
}

}  // namespace frugal::router
