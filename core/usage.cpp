#include "core/usage.h"

namespace frugal {
namespace {
int64_t int_or_zero(simdjson::dom::element obj, const char* key) {
  int64_t v = 0;
  if (obj[key].get_int64().get(v)) return 0;
  return v;
}
}  // namespace

Usage usage_from_openai(simdjson::dom::element usage) {
  Usage u;
  if (!usage.is_object()) return u;
  u.reported = true;
  u.input_tokens = int_or_zero(usage, "prompt_tokens");
  u.output_tokens = int_or_zero(usage, "completion_tokens");
  simdjson::dom::element d;
  if (!usage["prompt_tokens_details"].get(d) && d.is_object()) u.cached_input_tokens = int_or_zero(d, "cached_tokens");
  if (!usage["completion_tokens_details"].get(d) && d.is_object())
    u.reasoning_tokens = int_or_zero(d, "reasoning_tokens");
  return u;
}

Usage usage_of_openai_body(std::string_view body) {
  // On-Demand reads past the end of its input: the body goes into a padded buffer.
  thread_local simdjson::ondemand::parser parser;
  thread_local std::string padded;
  padded.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  padded.assign(body);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object usage;
  if (parser.iterate(padded.data(), padded.size(), padded.capacity()).get(doc) ||
      doc.find_field_unordered("usage").get_object().get(usage))
    return {};
  auto int_of = [](simdjson::ondemand::value v) {
    int64_t n = 0;
    return v.get_int64().get(n) ? 0 : n;
  };
  auto nested = [&](simdjson::ondemand::value v, std::string_view key) {
    simdjson::ondemand::object o;
    if (v.get_object().get(o)) return int64_t{0};
    for (auto f : o) {
      simdjson::ondemand::raw_json_string k;
      if (f.key().get(k)) return int64_t{0};
      if (k == key) return int_of(f.value());
    }
    return int64_t{0};
  };
  Usage u;
  for (auto f : usage) {
    simdjson::ondemand::raw_json_string k;
    if (f.key().get(k)) return {};
    if (k == "prompt_tokens") u.input_tokens = int_of(f.value());
    else if (k == "completion_tokens") u.output_tokens = int_of(f.value());
    else if (k == "prompt_tokens_details") u.cached_input_tokens = nested(f.value(), "cached_tokens");
    else if (k == "completion_tokens_details") u.reasoning_tokens = nested(f.value(), "reasoning_tokens");
  }
  u.reported = true;
  return u;
}

}  // namespace frugal
