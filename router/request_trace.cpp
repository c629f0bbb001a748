#include "router/request_trace.h"

#include <random>

#include "core/ids.h"

namespace frugal::router {

namespace {

bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// A trace id of all zeros is invalid (W3C Trace Context, 3.2.2.3).
bool is_valid_trace_id(std::string_view id) {
  return id.size() == 32 && is_lower_hex(id) && id.find_first_not_of('0') != std::string_view::npos;
}

}  // namespace

const char* exchange_end_name(ExchangeEnd e) {
  switch (e) {
    case ExchangeEnd::kComplete: return "complete";
    case ExchangeEnd::kUpstreamError: return "upstream_error";
    case ExchangeEnd::kUpstreamBroke: return "upstream_broke";
    case ExchangeEnd::kClientGone: return "client_gone";
    case ExchangeEnd::kShutdown: return "shutdown";
  }
  return "?";
}

Money RequestTrace::cost() const {
  Money sum;
  for (const auto& t : tiers) sum += t.cost;
  return sum;
}

size_t RequestTrace::transport_attempts() const {
  size_t n = 0;
  for (const auto& t : tiers) n += t.transport.size();
  return n;
}

std::optional<TraceParent> parse_traceparent(std::string_view h) {
  // "<2 hex version>-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"; a later
  // version may append fields after a '-'; version 00 has exactly these.
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  const std::string_view version = h.substr(0, 2), id = h.substr(3, 32), parent = h.substr(36, 16),
                         flags = h.substr(53, 2);
  if (!is_lower_hex(version) || version == "ff" || !is_lower_hex(flags)) return std::nullopt;
  if (version == "00" ? h.size() != 55 : (h.size() > 55 && h[55] != '-')) return std::nullopt;
  if (!is_valid_trace_id(id) || !is_lower_hex(parent) || parent.find_first_not_of('0') == std::string_view::npos)
    return std::nullopt;
  const int f = (flags[1] >= 'a' ? flags[1] - 'a' + 10 : flags[1] - '0');
  return TraceParent{std::string(id), std::string(parent), (f & 1) != 0};
}

uint64_t new_span_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t id = 0;
  while (id == 0) id = rng();
  return id;
}

std::string span_id_hex(uint64_t id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, id >>= 4) out[static_cast<size_t>(i)] = kHex[id & 15];
  return out;
}

std::string traceparent_value(std::string_view trace_id, uint64_t span_id, bool sampled) {
  std::string out;
  out.reserve(55);
  out += "00-";
  out += trace_id;
  out += '-';
  out += span_id_hex(span_id);
  out += sampled ? "-01" : "-00";
  return out;
}

std::string trace_id_for(std::string_view traceparent, std::string_view request_id) {
  if (auto tp = parse_traceparent(traceparent)) return std::move(tp->trace_id);
  if (request_id.size() >= 32) {
    const std::string_view tail = request_id.substr(request_id.size() - 32);
    if (is_valid_trace_id(tail)) return std::string(tail);
  }
  std::string id = new_request_id().substr(4);  // "frg-" + 32 random hex digits
  if (!is_valid_trace_id(id)) id.back() = '1';  // all zeros (one chance in 2^128)
  return id;
}

const TierAttempt* RequestTrace::answer_attempt() const {
  if (answer_tier < 0) return nullptr;
  int n = -1;
  for (const TierAttempt& a : tiers) {
    if (a.status == TierStatus::kVerifier) continue;
    if (++n == answer_tier) return &a;
  }
  return nullptr;
}

bool has_ledger_row(const RequestTrace& t) { return t.dispatched || t.answered_from_cache(); }

LedgerRecord ledger_record(const RequestTrace& t) {
  LedgerRecord r;
  r.request_id = t.request_id;
  r.wall_us = t.wall_start_us;
  r.key_id = t.key_id;
  r.team = t.team;
  r.request_type = t.request_type;
  r.route = t.route;
  r.dialect = dialect_name(t.dialect);
  r.cache = t.cache.outcome;
  r.tiers.reserve(t.tiers.size());
  for (const TierAttempt& a : t.tiers) {
    LedgerTier lt;
    lt.model = a.model;
    lt.provider = a.provider;
    lt.usage = a.usage;
    lt.cost = a.cost;
    lt.latency_us = a.last_byte_us > a.started_us ? a.last_byte_us - a.started_us : 0;
    lt.ttft_us = a.first_byte_us > a.started_us ? a.first_byte_us - a.started_us : 0;
    lt.status = a.status;
    lt.score = a.score;
    lt.reason = a.reason;
    lt.price = a.price;
    r.tiers.push_back(std::move(lt));
  }
  // A cache hit is booked to a pseudo-model: it costs nothing and its baseline is what
  // the stored answer would have cost again.
  r.answer_model = t.answered_from_cache() ? "(cache)" : t.answer_model;
  r.total_cost = t.cost();
  r.baseline = t.booked_baseline();
  r.savings = r.baseline - r.total_cost;
  r.status_code = t.status;
  r.stream_cancelled = t.end == ExchangeEnd::kClientGone;
  if (t.catalogue_priced()) r.catalogue_version = t.catalogue_version;
  r.price_unknown = t.price_unknown();
  r.shaping = t.shaping;
  return r;
}

bool RequestTrace::cost_unknown() const {
  for (const TierAttempt& a : tiers)
    if (a.price == policies::PriceSource::kUnknown) return true;
  return false;
}

bool RequestTrace::price_unknown() const {
  return cost_unknown() || (baseline_known && baseline_price == policies::PriceSource::kUnknown);
}

bool RequestTrace::catalogue_priced() const {
  if (baseline_known && baseline_price == policies::PriceSource::kCatalogue) return true;
  for (const TierAttempt& a : tiers)
    if (a.price == policies::PriceSource::kCatalogue) return true;
  return false;
}

}  // namespace frugal::router
