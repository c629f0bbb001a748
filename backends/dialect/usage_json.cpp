#include "backends/dialect/usage_json.h"

#include <algorithm>

#include "backends/dialect/detail.h"

namespace frugal {

using dialect_detail::int_field;

void AnthropicUsage::merge(simdjson::dom::element usage) {
  if (!usage.is_object()) return;
  reported = true;
  if (auto v = int_field(usage, "input_tokens")) input_tokens = *v;
  if (auto v = int_field(usage, "output_tokens")) output_tokens = *v;
  if (auto v = int_field(usage, "cache_read_input_tokens")) cache_read_input_tokens = *v;
  if (auto v = int_field(usage, "cache_creation_input_tokens")) cache_creation_input_tokens = *v;
  simdjson::dom::element cc;
  if (!usage["cache_creation"].get(cc) && cc.is_object()) {
    has_ttl_breakdown = true;
    if (auto v = int_field(cc, "ephemeral_5m_input_tokens")) ephemeral_5m_input_tokens = *v;
    if (auto v = int_field(cc, "ephemeral_1h_input_tokens")) ephemeral_1h_input_tokens = *v;
  }
}

Usage AnthropicUsage::to_usage() const {
  Usage u;
  u.reported = reported;
  u.cached_input_tokens = cache_read_input_tokens;
  if (has_ttl_breakdown) {
    u.cache_write_5m_tokens = ephemeral_5m_input_tokens;
    u.cache_write_1h_tokens = ephemeral_1h_input_tokens;
    // Trust the total if the breakdown does not add up (older or partial reports):
    // unexplained writes are priced as the default 5-minute TTL.
    const int64_t rest = cache_creation_input_tokens - ephemeral_5m_input_tokens -
                         ephemeral_1h_input_tokens;
    if (rest > 0) u.cache_write_5m_tokens += rest;
  } else {
    u.cache_write_5m_tokens = cache_creation_input_tokens;  // the API's default TTL
  }
  u.input_tokens = input_tokens + cache_read_input_tokens + u.cache_write_5m_tokens +
                   u.cache_write_1h_tokens;
  u.output_tokens = output_tokens;
  return u;
}

void write_openai_usage(JsonWriter& w, const Usage& u) {
  w.begin_object();
  w.key("prompt_tokens").value(u.input_tokens);
  w.key("completion_tokens").value(u.output_tokens);
  w.key("total_tokens").value(u.total_tokens());
  w.key("prompt_tokens_details").begin_object().key("cached_tokens").value(u.cached_input_tokens).end_object();
  w.key("completion_tokens_details").begin_object().key("reasoning_tokens").value(u.reasoning_tokens).end_object();
  w.end_object();
}

void write_anthropic_usage(JsonWriter& w, const Usage& u) {
  const int64_t writes = u.cache_write_5m_tokens + u.cache_write_1h_tokens;
  w.begin_object();
  w.key("input_tokens").value(std::max<int64_t>(0, u.input_tokens - u.cached_input_tokens - writes));
  w.key("cache_creation_input_tokens").value(writes);
  w.key("cache_read_input_tokens").value(u.cached_input_tokens);
  w.key("cache_creation").begin_object();
  w.key("ephemeral_5m_input_tokens").value(u.cache_write_5m_tokens);
  w.key("ephemeral_1h_input_tokens").value(u.cache_write_1h_tokens);
  w.end_object();
  w.key("output_tokens").value(u.output_tokens);
  w.end_object();
}

}  // namespace frugal
