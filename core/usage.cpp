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

}  // namespace frugal
