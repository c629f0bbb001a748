#include "router/ledger_codec.h"

#include <algorithm>
#include <bit>
#include <initializer_list>

#include "core/varint.h"
#include "router/ledger_json.h"

namespace frugal::router {
namespace {

using namespace frugal::wire;

constexpr uint8_t kRowV2 = 2;  // money in micro-dollars
constexpr uint8_t kRowV3 = 3;  // money in picodollars
constexpr uint8_t kRowV4 = 4;  // + price source per tier, catalogue version, price unknown, shaping (written)
constexpr uint8_t kTotalsV1 = 1;
constexpr uint8_t kTotalsV2 = 2;
constexpr uint8_t kTotalsV3 = 3;  // written

// The int64 counters of CostTotals in their stored order (v1 and v2: the first 11).
constexpr size_t kCounters = 11;
constexpr size_t kCountersV3 = 12;
constexpr size_t kTotalsV2Bytes = 1 + 8 * kCounters + 16 * 2;
constexpr size_t kTotalsV3Bytes = 1 + 8 * kCountersV3 + 16 * 2;

Error corrupt(const std::string& what) { return make_error(ErrorKind::kInternal, "ledger record: " + what); }

void put_money(std::string& out, Money m) { put_svarint128(out, m.picos()); }

// v2 rows: micro-dollars; v3: picodollars.
bool get_money(std::string_view& s, Money& m, uint8_t version) {
  if (version == kRowV2) {
    int64_t micros = 0;
    if (!get_svarint(s, micros)) return false;
    m = Money::from_micros(micros);
    return true;
  }
  int128_t picos = 0;
  if (!get_svarint128(s, picos)) return false;
  m = Money::from_picos(picos);
  return true;
}

Result<LedgerRecord> decode_binary(std::string_view s) {
  LedgerRecord r;
  uint8_t version = 0;
  uint64_t n = 0;
  int64_t v = 0;
  bool ok = get_u8(s, version) && get_string(s, r.request_id) && get_svarint(s, r.wall_us) &&
            get_string(s, r.key_id) && get_string(s, r.team) && get_string(s, r.request_type) &&
            get_string(s, r.route) && get_string(s, r.dialect) && get_varint(s, n, 5) && n <= s.size();
  for (uint64_t i = 0; ok && i < n; ++i) {
    LedgerTier t;
    Usage& u = t.usage;
    uint8_t status = 0, reported = 0, has_score = 0;
    ok = get_string(s, t.model) && get_string(s, t.provider) && get_svarint(s, u.input_tokens) &&
         get_svarint(s, u.cached_input_tokens) && get_svarint(s, u.cache_write_5m_tokens) &&
         get_svarint(s, u.cache_write_1h_tokens) && get_svarint(s, u.output_tokens) &&
         get_svarint(s, u.reasoning_tokens) && get_u8(s, reported) && reported <= 1 &&
         get_money(s, t.cost, version) && get_svarint(s, t.latency_us) && get_svarint(s, t.ttft_us) &&
         get_u8(s, status) && status <= static_cast<uint8_t>(TierStatus::kVerifier) && get_u8(s, has_score) &&
         has_score <= 1;
    if (ok && has_score) {
      uint64_t bits = 0;
      ok = get_le64(s, bits);
      if (ok) t.score = std::bit_cast<double>(bits);
    }
    ok = ok && get_string(s, t.reason);
    if (ok && version >= kRowV4) {
      uint8_t price = 0;
      ok = get_u8(s, price) && price <= policies::kMaxPriceSource;
      t.price = static_cast<policies::PriceSource>(price);
    }
    u.reported = reported != 0;
    t.status = static_cast<TierStatus>(status);
    if (ok) r.tiers.push_back(std::move(t));
  }
  uint8_t cache = 0, cancelled = 0;
  ok = ok && get_u8(s, cache) && cache <= static_cast<uint8_t>(CacheOutcome::kBypass) &&
       get_string(s, r.answer_model) && get_money(s, r.total_cost, version) && get_money(s, r.baseline, version) &&
       get_money(s, r.savings, version) && get_svarint(s, v) && get_u8(s, cancelled) && cancelled <= 1;
  if (ok && version >= kRowV4) {
    uint8_t unknown = 0;
    ok = get_string(s, r.catalogue_version) && get_u8(s, unknown) && unknown <= 1 &&
         get_u8(s, r.shaping.applied) && (r.shaping.applied & ~kShapingBits) == 0 &&
         get_svarint(s, r.shaping.max_tokens);
    r.price_unknown = unknown != 0;
  }
  ok = ok && s.empty();
  if (!ok) return corrupt("truncated or malformed binary row");
  r.cache = static_cast<CacheOutcome>(cache);
  r.status_code = static_cast<int>(v);
  r.stream_cancelled = cancelled != 0;
  return r;
}

std::optional<CostTotals> decode_v1(std::string_view s) {
  // Counters then cost and baseline in micro-dollars; an older, shorter value lacks the
  // last ones (0).
  if ((s.size() - 1) % 8 != 0) return std::nullopt;
  int64_t a[kCounters + 2] = {};
  for (size_t f = 0; f < kCounters + 2 && 1 + 8 * (f + 1) <= s.size(); ++f)
    a[f] = static_cast<int64_t>(load_le64(s.data() + 1 + 8 * f));
  CostTotals t;
  int64_t* c[kCounters] = {&t.requests, &t.attempts, &t.accepted, &t.rejected, &t.errors, &t.cache_hits,
                           &t.input_tokens, &t.cached_input_tokens, &t.cache_write_5m_tokens,
                           &t.cache_write_1h_tokens, &t.output_tokens};
  for (size_t f = 0; f < kCounters; ++f) *c[f] = a[f];
  t.cost = Money::from_micros(a[kCounters]);
  t.baseline = Money::from_micros(a[kCounters + 1]);
  return t;
}

}  // namespace

int64_t floor_hour(int64_t t) {
  return (t >= 0 ? t / kLedgerHourUs : (t - kLedgerHourUs + 1) / kLedgerHourUs) * kLedgerHourUs;
}

void append_ledger_key(std::string& k, int64_t wall_us, std::string_view request_id) {
  k.reserve(k.size() + 8 + request_id.size());
  put_be64(k, static_cast<uint64_t>(wall_us));
  k.append(request_id);
}

std::string ledger_key(int64_t wall_us, std::string_view request_id) {
  std::string k;
  append_ledger_key(k, wall_us, request_id);
  return k;
}

int64_t ledger_key_time(std::string_view key) { return static_cast<int64_t>(load_be64(key.data())); }

void append_record(std::string& out, const LedgerRecord& r) {
  out.reserve(out.size() + 96 + r.request_id.size() + r.key_id.size() + r.team.size() + r.request_type.size() +
              r.route.size() + r.answer_model.size() + 64 * r.tiers.size());
  out += static_cast<char>(kRowV4);
  put_string(out, r.request_id);
  put_svarint(out, r.wall_us);
  for (const std::string* f : {&r.key_id, &r.team, &r.request_type, &r.route, &r.dialect}) put_string(out, *f);
  put_varint(out, r.tiers.size());
  for (const LedgerTier& t : r.tiers) {
    put_string(out, t.model);
    put_string(out, t.provider);
    const Usage& u = t.usage;
    for (int64_t v : {u.input_tokens, u.cached_input_tokens, u.cache_write_5m_tokens, u.cache_write_1h_tokens,
                      u.output_tokens, u.reasoning_tokens})
      put_svarint(out, v);
    out += static_cast<char>(u.reported ? 1 : 0);
    put_money(out, t.cost);
    put_svarint(out, t.latency_us);
    put_svarint(out, t.ttft_us);
    out += static_cast<char>(t.status);
    out += static_cast<char>(t.score ? 1 : 0);
    if (t.score) put_le64(out, std::bit_cast<uint64_t>(*t.score));
    put_string(out, t.reason);
    out += static_cast<char>(t.price);
  }
  out += static_cast<char>(r.cache);
  put_string(out, r.answer_model);
  put_money(out, r.total_cost);
  put_money(out, r.baseline);
  put_money(out, r.savings);
  put_svarint(out, r.status_code);
  out += static_cast<char>(r.stream_cancelled ? 1 : 0);
  put_string(out, r.catalogue_version);
  out += static_cast<char>(r.price_unknown ? 1 : 0);
  out += static_cast<char>(r.shaping.applied);
  put_svarint(out, r.shaping.max_tokens);
}

std::string encode_record(const LedgerRecord& r) {
  std::string out;
  append_record(out, r);
  return out;
}

Result<LedgerRecord> decode_record(std::string_view bytes) {
  if (!bytes.empty()) {
    const auto version = static_cast<uint8_t>(bytes.front());
    if (version == kRowV2 || version == kRowV3 || version == kRowV4) return decode_binary(bytes);
  }
  return record_from_json(bytes);  // rows stored before v2
}

void assign_rollup_key(std::string& out, int64_t hour_us, std::string_view request_type, std::string_view route,
                       std::string_view model, std::string_view key, std::string_view team) {
  const std::initializer_list<std::string_view> fields = {request_type, route, model, key, team};
  size_t n = 8;
  for (std::string_view f : fields) n += f.size() + 5;
  out.clear();
  out.reserve(n);
  put_be64(out, static_cast<uint64_t>(hour_us));
  for (std::string_view f : fields) put_string(out, f);
}

std::string encode_rollup_key(const RollupKey& k) {
  std::string out;
  assign_rollup_key(out, k.hour_us, k.request_type, k.route, k.model, k.key, k.team);
  return out;
}

std::optional<RollupKey> decode_rollup_key(std::string_view s) {
  if (s.size() < 8) return std::nullopt;
  RollupKey k;
  k.hour_us = static_cast<int64_t>(load_be64(s.data()));
  s.remove_prefix(8);
  for (std::string* f : {&k.request_type, &k.route, &k.model, &k.key, &k.team})
    if (!get_string(s, *f)) return std::nullopt;
  if (!s.empty()) return std::nullopt;
  return k;
}

std::string rollup_seek_key(int64_t from_us) {
  std::string k;
  put_be64(k, static_cast<uint64_t>(floor_hour(from_us)));
  return k;
}

std::string encode_totals(const CostTotals& t) {
  std::string out;
  out.reserve(kTotalsV3Bytes);
  out += static_cast<char>(kTotalsV3);
  for (int64_t v : {t.requests, t.attempts, t.accepted, t.rejected, t.errors, t.cache_hits, t.input_tokens,
                    t.cached_input_tokens, t.cache_write_5m_tokens, t.cache_write_1h_tokens, t.output_tokens,
                    t.unpriced})
    put_le64(out, static_cast<uint64_t>(v));
  put_le128(out, static_cast<uint128_t>(t.cost.picos()));
  put_le128(out, static_cast<uint128_t>(t.baseline.picos()));
  return out;
}

std::optional<CostTotals> decode_totals(std::string_view s) {
  if (s.empty()) return std::nullopt;
  const auto version = static_cast<uint8_t>(s.front());
  if (version == kTotalsV1) return decode_v1(s);
  const size_t counters = version == kTotalsV2 ? kCounters : kCountersV3;
  if ((version != kTotalsV2 && version != kTotalsV3) ||
      s.size() != (version == kTotalsV2 ? kTotalsV2Bytes : kTotalsV3Bytes))
    return std::nullopt;
  CostTotals t;
  int64_t* c[kCountersV3] = {&t.requests, &t.attempts, &t.accepted, &t.rejected, &t.errors, &t.cache_hits,
                             &t.input_tokens, &t.cached_input_tokens, &t.cache_write_5m_tokens,
                             &t.cache_write_1h_tokens, &t.output_tokens, &t.unpriced};
  const char* p = s.data() + 1;
  for (size_t f = 0; f < counters; ++f, p += 8) *c[f] = static_cast<int64_t>(load_le64(p));
  t.cost = Money::from_picos(static_cast<int128_t>(load_le128(p)));
  t.baseline = Money::from_picos(static_cast<int128_t>(load_le128(p + 16)));
  return t;
}

std::optional<std::string> merge_totals(const std::string_view* existing, std::string_view operand) {
  auto sum = decode_totals(operand);
  if (!sum) return std::nullopt;
  if (existing) {
    auto e = decode_totals(*existing);
    if (!e) return std::nullopt;
    *sum += *e;
  }
  return encode_totals(*sum);
}

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
    if (t.price == policies::PriceSource::kUnknown) ++c.unpriced;
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

std::vector<std::pair<RollupKey, CostTotals>> rollup_deltas(const LedgerRecord& r) {
  std::vector<std::pair<RollupKey, CostTotals>> out;
  for (auto& [model, t] : model_deltas(r))
    out.emplace_back(RollupKey{floor_hour(r.wall_us), r.request_type, r.route, *model, r.key_id, r.team}, t);
  return out;
}

}  // namespace frugal::router
