#include "router/costs.h"

#include <limits>

#include <algorithm>
#include <cstdio>

#include "core/json.h"
#include "policies/budget.h"

namespace frugal::router {

const char* group_by_name(GroupBy g) {
  switch (g) {
    case GroupBy::kHour: return "hour";
    case GroupBy::kRequestType: return "request_type";
    case GroupBy::kRoute: return "route";
    case GroupBy::kModel: return "model";
    case GroupBy::kKey: return "key";
    case GroupBy::kTeam: return "team";
  }
  return "?";
}

Result<std::vector<GroupBy>> parse_group_by(std::string_view csv) {
  std::vector<GroupBy> out;
  while (!csv.empty()) {
    const size_t comma = csv.find(',');
    std::string_view name = csv.substr(0, comma);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (!name.empty()) {
      bool found = false;
      for (GroupBy g : {GroupBy::kHour, GroupBy::kRequestType, GroupBy::kRoute, GroupBy::kModel,
                        GroupBy::kKey, GroupBy::kTeam}) {
        if (name == group_by_name(g)) {
          if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
          found = true;
        }
      }
      if (!found)
        return make_error(ErrorKind::kInvalidRequest,
                          "unknown group_by '" + std::string(name) +
                              "' (expected hour, request_type, route, model, key or team)",
                          "group_by");
    }
    if (comma == std::string_view::npos) break;
    csv.remove_prefix(comma + 1);
  }
  return out;
}

namespace {

// Sums saturate: a rollup read from disk may hold anything (a corrupt or hostile value
// must not be undefined behaviour), and no real total comes near the bounds.
template <class T>
void add_saturating(T& a, T b) {
  T r;
  if (__builtin_add_overflow(a, b, &r)) r = b > 0 ? std::numeric_limits<T>::max() : std::numeric_limits<T>::min();
  a = r;
}

void add_saturating(Money& a, Money b) {
  int128_t r;
  if (__builtin_add_overflow(a.picos(), b.picos(), &r)) {
    constexpr int128_t kMax = static_cast<int128_t>(~static_cast<uint128_t>(0) >> 1);
    r = b.picos() > 0 ? kMax : -kMax - 1;
  }
  a = Money::from_picos(r);
}

}  // namespace

CostTotals& CostTotals::operator+=(const CostTotals& o) {
  add_saturating(requests, o.requests);
  add_saturating(attempts, o.attempts);
  add_saturating(accepted, o.accepted);
  add_saturating(rejected, o.rejected);
  add_saturating(errors, o.errors);
  add_saturating(cache_hits, o.cache_hits);
  add_saturating(input_tokens, o.input_tokens);
  add_saturating(cached_input_tokens, o.cached_input_tokens);
  add_saturating(cache_write_5m_tokens, o.cache_write_5m_tokens);
  add_saturating(cache_write_1h_tokens, o.cache_write_1h_tokens);
  add_saturating(output_tokens, o.output_tokens);
  add_saturating(unpriced, o.unpriced);
  add_saturating(cost, o.cost);
  add_saturating(baseline, o.baseline);
  return *this;
}

namespace {

void totals_json(JsonWriter& w, const CostTotals& t) {
  w.key("requests").value(t.requests);
  w.key("attempts").value(t.attempts);
  w.key("accepted").value(t.accepted);
  w.key("rejected").value(t.rejected);
  w.key("errors").value(t.errors);
  w.key("cache_hits").value(t.cache_hits);
  w.key("input_tokens").value(t.input_tokens);
  w.key("cached_input_tokens").value(t.cached_input_tokens);
  w.key("cache_write_5m_tokens").value(t.cache_write_5m_tokens);
  w.key("cache_write_1h_tokens").value(t.cache_write_1h_tokens);
  w.key("output_tokens").value(t.output_tokens);
  if (t.unpriced > 0) {
    // Some tokens had no price: cost_usd (and so savings) is a lower bound. Absent: all priced.
    w.key("unpriced").value(t.unpriced);
    w.key("price").value("unknown");
  }
  w.key("cost_usd").value(t.cost.to_usd_string());
  w.key("baseline_usd").value(t.baseline.to_usd_string());
  w.key("savings_usd").value(t.savings().to_usd_string());
  w.key("cost_micros").value(t.cost.micros_rounded());
  w.key("baseline_micros").value(t.baseline.micros_rounded());
  w.key("savings_micros").value(t.savings().micros_rounded());
  w.key("cost_picos").value(t.cost.picos_string());
  w.key("baseline_picos").value(t.baseline.picos_string());
  w.key("savings_picos").value(t.savings().picos_string());
}

}  // namespace

std::string render_costs_json(const CostReport& r) {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("from").value(policies::format_utc(r.from_us));
  w.key("to").value(policies::format_utc(r.to_us));
  w.key("group_by").begin_array();
  for (GroupBy g : r.group_by) w.value(group_by_name(g));
  w.end_array();
  w.key("rows").begin_array();
  for (const auto& row : r.rows) {
    w.begin_object();
    for (size_t i = 0; i < r.group_by.size() && i < row.group.size(); ++i)
      w.key(group_by_name(r.group_by[i])).value(row.group[i]);
    totals_json(w, row.totals);
    w.end_object();
  }
  w.end_array();
  w.key("totals").begin_object();
  totals_json(w, r.totals);
  w.end_object();
  w.end_object();
  return out;
}

std::string render_costs_table(const CostReport& r) {
  std::vector<std::string> head;
  for (GroupBy g : r.group_by) head.emplace_back(group_by_name(g));
  if (head.empty()) head.emplace_back("");  // ungrouped: one label column for TOTAL
  const size_t ng = head.size();
  // The unpriced column only when some tokens had no price (the table is unchanged otherwise).
  const bool unpriced = r.totals.unpriced > 0;
  for (const char* h : {"requests", "attempts", "rejected", "errors", "cache_hits", "in_tokens", "out_tokens"})
    head.emplace_back(h);
  if (unpriced) head.emplace_back("unpriced");
  for (const char* h : {"cost_usd", "baseline_usd", "savings_usd"}) head.emplace_back(h);
  auto cells = [&](const std::vector<std::string>& group, const CostTotals& t) {
    std::vector<std::string> c = group;
    c.resize(ng);
    for (int64_t v : {t.requests, t.attempts, t.rejected, t.errors, t.cache_hits, t.input_tokens,
                      t.output_tokens})
      c.push_back(std::to_string(v));
    if (unpriced) c.push_back(std::to_string(t.unpriced));
    // A cost with unpriced tokens is a lower bound: ">=0.001234" (price unknown).
    c.push_back((t.unpriced > 0 ? ">=" : "") + t.cost.to_usd_string());
    c.push_back(t.baseline.to_usd_string());
    c.push_back(t.savings().to_usd_string());
    return c;
  };
  std::vector<std::vector<std::string>> lines{head};
  for (const auto& row : r.rows) lines.push_back(cells(row.group, row.totals));
  std::vector<std::string> total_group(ng);
  total_group[0] = "TOTAL";
  lines.push_back(cells(total_group, r.totals));
  std::vector<size_t> width(lines[0].size(), 0);
  for (const auto& l : lines)
    for (size_t i = 0; i < l.size(); ++i) width[i] = std::max(width[i], l[i].size());
  std::string out;
  for (const auto& l : lines) {
    for (size_t i = 0; i < l.size(); ++i) {
      if (i) out += "  ";
      const size_t pad = width[i] - l[i].size();
      if (i < ng) out += l[i] + std::string(pad, ' ');  // text left-aligned
      else out += std::string(pad, ' ') + l[i];                // numbers right-aligned
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += '\n';
  }
  return out;
}

}  // namespace frugal::router
