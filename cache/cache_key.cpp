#include "cache/cache_key.h"

#include <algorithm>
#include <vector>

#include "cache/canonical_json.h"

namespace frugal::cache {
namespace {

// Bump when the canonical form changes: old entries then simply stop matching.
constexpr std::string_view kKeyFormat = "frugal.cache.key.v2";
// Embeddings requests (/v1/embeddings) hash from a format of their own, so no chat
// request can share a key with one; their inputs are in the unmodelled fields below.
constexpr std::string_view kEmbeddingsKeyFormat = "frugal.cache.embeddings.v1";
constexpr uint64_t kKeySeed = 0x6672756761'6c6b31ULL;

template <class Sink, class T, class Put>
void optional_field(Sink& in, char tag, const std::optional<T>& v, Put put) {
  in.tag(tag).boolean(v.has_value());
  if (v) put(*v);
}

template <class Sink>
void put_json(Sink& in, char tag, std::string_view json) {
  in.tag(tag).boolean(!json.empty());
  if (!json.empty()) in.str(canonical_json_or_raw(json));
}

// `Sink`: HashStream for the key (no buffer), HashInput for the material.
template <class Sink>
void build_key_material(Sink& in, const RequestDigest& digest, const ChatRequest& req, const KeyScope& scope) {
  in.str(req.embeddings ? kEmbeddingsKeyFormat : kKeyFormat);
  in.tag('r').str(scope.route).tag('u').str(scope.upstream_model);
  in.tag('s').boolean(scope.shared);
  if (!scope.shared) in.tag('T').str(scope.tenant);

  in.raw(digest.message_bytes());  // 'm', count, each message
  in.raw(digest.tool_bytes());     // 'f', count, each tool
  put_json(in, 'c', req.tool_choice_json);
  put_json(in, 'R', req.response_format_json);

  const auto& sp = req.sampling;
  auto f = [&](double d) { in.f64(d); };
  auto i = [&](int64_t v) { in.i64(v); };
  optional_field(in, '1', sp.temperature, f);
  optional_field(in, '2', sp.top_p, f);
  optional_field(in, '3', sp.presence_penalty, f);
  optional_field(in, '4', sp.frequency_penalty, f);
  optional_field(in, '5', sp.seed, i);
  optional_field(in, '6', sp.max_tokens, i);
  optional_field(in, '7', sp.n, i);
  optional_field(in, '8', sp.top_logprobs, i);
  in.tag('9').boolean(sp.logprobs);
  in.tag('S').u64(sp.stop.size());
  for (const auto& s : sp.stop) in.str(s);

  // Fields the gateway does not model may still change the answer (a new sampling
  // knob, a provider extension): they are part of the key, canonicalised, in key order.
  static constexpr std::string_view kModelled[] = {
      "model", "messages", "tools", "tool_choice", "response_format", "temperature", "top_p",
      "presence_penalty", "frequency_penalty", "seed", "max_tokens", "max_completion_tokens", "n",
      "top_logprobs", "logprobs", "stop",
      // no effect on the answer:
      "stream", "stream_options", "user", "metadata", "store", "service_tier", "prompt_cache_key"};
  std::vector<std::pair<std::string_view, simdjson::dom::element>> extra;
  if (req.has_root)
    for (auto field : req.root)
      if (std::find(std::begin(kModelled), std::end(kModelled), field.key) == std::end(kModelled))
        extra.emplace_back(field.key, field.value);
  std::sort(extra.begin(), extra.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  in.tag('x').u64(extra.size());
  std::string value;
  for (const auto& [k, v] : extra) {
    value.clear();
    canonical_json_to(value, v);
    in.str(k).str(value);
  }
}

}  // namespace

std::string cache_key_material(const ChatRequest& req, const KeyScope& scope) {
  HashInput in;
  build_key_material(in, digest_request(req), req, scope);
  return in.take();
}

CacheKey make_cache_key(const RequestDigest& digest, const ChatRequest& req, const KeyScope& scope) {
  HashStream in(kKeySeed);
  build_key_material(in, digest, req, scope);
  return in.digest();
}

CacheKey make_cache_key(const ChatRequest& req, const KeyScope& scope) {
  return make_cache_key(digest_request(req), req, scope);
}

bool is_cacheable_by_default(const ChatRequest& req) {
  if (req.embeddings) return true;  // vectors do not depend on sampling
  const auto& sp = req.sampling;
  if (sp.n && *sp.n > 1) return false;
  return (sp.temperature && *sp.temperature == 0.0) || sp.seed.has_value();
}

}  // namespace frugal::cache
