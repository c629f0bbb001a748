#include "gateway/trace_headers.h"

namespace frugal::gateway {

HeaderList response_headers(const router::RequestTrace& t) {
  HeaderList out;
  for_each_response_header(t, [&](std::string_view k, std::string v) { out.emplace_back(k, std::move(v)); });
  return out;
}

std::vector<std::pair<std::string, std::string>> trailers(const router::RequestTrace& t) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!trace_has_cost(t)) return out;
  const Money cost = t.cost();
  out.emplace_back("x-frugal-cost-usd", t.cost_unknown() ? std::string("unknown") : cost.to_usd_string());
  out.emplace_back("x-frugal-savings-usd",
                   t.price_unknown() ? std::string("unknown") : (t.booked_baseline() - cost).to_usd_string());
  return out;
}

}  // namespace frugal::gateway
