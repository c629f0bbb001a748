#include "router/ledger_json.h"

#include <simdjson.h>

#include <cmath>

#include "core/json.h"

namespace frugal::router {
namespace {

constexpr int kJsonV1 = 1;  // money in micro-dollars (stored rows before binary v2)
constexpr int kJsonV2 = 2;  // + exact *_usd strings
constexpr int kJsonV3 = 3;  // + price per tier, catalogue_version, price_unknown, shaping (written)

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

// "cost": micro-dollars (rounded, for older readers), "cost_usd": exact.
void money_json(JsonWriter& w, const char* name, const char* usd_name, Money m) {
  w.key(name).value(m.micros_rounded());
  w.key(usd_name).value(m.to_usd_string());
}

Error corrupt(const std::string& what) { return make_error(ErrorKind::kInternal, "ledger record: " + what); }

policies::PriceSource price_source_of(std::string_view s) {
  for (uint8_t v = 0; v <= policies::kMaxPriceSource; ++v)
    if (s == policies::price_source_name(static_cast<policies::PriceSource>(v)))
      return static_cast<policies::PriceSource>(v);
  return policies::PriceSource::kNone;
}

constexpr const char* kShapingNames[] = {"max_tokens_default", "max_tokens_cap", "stop", "concise",
                                         "reasoning_effort"};

}  // namespace

std::string shaping_names(uint8_t applied) {
  std::string out;
  for (int b = 0; b < 5; ++b)
    if (applied & (1u << b)) out += (out.empty() ? "" : ",") + std::string(kShapingNames[b]);
  return out;
}

std::string record_json(const LedgerRecord& r) {
  std::string out;
  out.reserve(320 + 190 * r.tiers.size());
  JsonWriter w(out);
  w.begin_object();
  w.key("v").value(kJsonV3);
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
    money_json(w, "cost", "cost_usd", t.cost);
    w.key("latency_us").value(t.latency_us);
    w.key("ttft_us").value(t.ttft_us);
    w.key("status").value(status_name(t.status));
    w.key("score");
    if (t.score && std::isfinite(*t.score)) w.value(*t.score);
    else w.null();
    w.key("reason").value(t.reason);
    w.key("price").value(policies::price_source_name(t.price));
    w.end_object();
  }
  w.end_array();
  w.key("cache").value(cache_name(r.cache));
  w.key("answer_model").value(r.answer_model);
  money_json(w, "cost", "cost_usd", r.total_cost);
  money_json(w, "baseline", "baseline_usd", r.baseline);
  money_json(w, "savings", "savings_usd", r.savings);
  w.key("status").value(r.status_code);
  w.key("cancelled").value(r.stream_cancelled);
  w.key("catalogue_version").value(r.catalogue_version);
  w.key("price_unknown").value(r.price_unknown);
  w.key("shaping").begin_object();
  w.key("applied").begin_array();
  for (int b = 0; b < 5; ++b)
    if (r.shaping.applied & (1u << b)) w.value(kShapingNames[b]);
  w.end_array();
  w.key("max_tokens").value(r.shaping.max_tokens);
  w.end_object();
  w.end_object();
  return out;
}

Result<LedgerRecord> record_from_json(std::string_view bytes) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  // A default string_view has no data pointer, which simdjson must not be given (UBSan).
  if (auto err = parser.parse(bytes.empty() ? "" : bytes.data(), bytes.size()).get(root))
    return corrupt(std::string("not JSON: ") + simdjson::error_message(err));
  int64_t v = 0;
  if (root["v"].get(v) || (v != kJsonV1 && v != kJsonV2 && v != kJsonV3)) return corrupt("unsupported version " + std::to_string(v));
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
  // v1: integer micro-dollars under `k`; v2: the exact decimal under `usd_k`.
  auto money = [&](simdjson::dom::element e, const char* k, const char* usd_k, Money& dst) {
    if (v == kJsonV1) {
      int64_t micros = 0;
      num(e, k, micros);
      dst = Money::from_micros(micros);
      return;
    }
    std::string_view s;
    std::optional<Money> m;
    if (e[usd_k].get(s) || !(m = parse_usd(s))) ok = false;
    else dst = *m;
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
    money(te, "cost", "cost_usd", t.cost);
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
    if (v >= kJsonV3) {
      std::string price;
      str(te, "price", price);
      t.price = price_source_of(price);
    }
    r.tiers.push_back(std::move(t));
  }
  std::string cache;
  str(root, "cache", cache);
  r.cache = cache == "hit"      ? CacheOutcome::kHit
            : cache == "miss"   ? CacheOutcome::kMiss
            : cache == "bypass" ? CacheOutcome::kBypass
                                : CacheOutcome::kNone;
  str(root, "answer_model", r.answer_model);
  money(root, "cost", "cost_usd", r.total_cost);
  money(root, "baseline", "baseline_usd", r.baseline);
  money(root, "savings", "savings_usd", r.savings);
  int64_t status = 0;
  num(root, "status", status);
  r.status_code = static_cast<int>(status);
  if (root["cancelled"].get(r.stream_cancelled)) ok = false;
  if (v >= kJsonV3) {
    str(root, "catalogue_version", r.catalogue_version);
    if (root["price_unknown"].get(r.price_unknown)) ok = false;
    simdjson::dom::element sh;
    simdjson::dom::array applied;
    if (root["shaping"].get(sh) || sh["applied"].get(applied)) {
      ok = false;
    } else {
      for (simdjson::dom::element a : applied) {
        std::string_view name;
        if (a.get(name)) ok = false;
        for (int b = 0; b < 5; ++b)
          if (name == kShapingNames[b]) r.shaping.applied |= static_cast<uint8_t>(1u << b);
      }
      num(sh, "max_tokens", r.shaping.max_tokens);
    }
  }
  if (!ok) return corrupt("missing or mistyped field");
  return r;
}

}  // namespace frugal::router
