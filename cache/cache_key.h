#pragma once
// The exact-cache key: a stable 128-bit hash of everything that changes the answer.
#include <cstddef>
#include <functional>
#include <string>

#include "cache/hash.h"
#include "cache/request_digest.h"
#include "core/chat.h"

namespace frugal::cache {

using CacheKey = Hash128;

struct CacheKeyHasher {
  size_t operator()(const CacheKey& k) const noexcept { return static_cast<size_t>(k.lo ^ k.hi); }
};

// Who may share an entry and which upstream produced it.
struct KeyScope {
  std::string route;           // resolved route / policy name
  std::string upstream_model;  // the model actually called (after routing)
  std::string tenant;          // e.g. hash of the virtual API key
  bool shared = false;         // true: one entry for all tenants of the route
};

// Hash of the canonical form of `req` within `scope`. Included: route, upstream
// model, tenant (unless shared), every message (role, name, tool_call_id, content
// parts, tool calls with canonicalised arguments), tools (name, description,
// canonical parameter schema), tool_choice, response_format, temperature, top_p,
// presence/frequency penalty, seed, n, logprobs, top_logprobs, max tokens, stop.
// Excluded on purpose: `stream` and `include_usage` (one entry serves plain and
// streamed requests), `user`, the client-facing model alias (the route and upstream
// model are what matter), and JSON key order / whitespace / escaping.
// A string content and a one-text-part array content hash alike.
// Pure and thread-safe; never fails (unparseable JSON text is hashed raw).
// `digest` is digest_request(req): messages and tools come from it, canonicalised once
// per request for the key and the prefix chain alike.
CacheKey make_cache_key(const RequestDigest& digest, const ChatRequest& req, const KeyScope& scope);
// make_cache_key(digest_request(req), req, scope).
CacheKey make_cache_key(const ChatRequest& req, const KeyScope& scope);

// The canonical bytes that make_cache_key hashes (for debugging and tests).
std::string cache_key_material(const ChatRequest& req, const KeyScope& scope);

// An embeddings request (req.embeddings) is keyed apart from every chat request (a key
// format of its own), by its unmodelled fields: input, encoding_format, dimensions.
//
// Deterministic enough to cache without the client asking: temperature 0, or a seed
// present; and at most one choice (n <= 1). Embeddings always are.
bool is_cacheable_by_default(const ChatRequest& req);

}  // namespace frugal::cache
