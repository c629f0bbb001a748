#pragma once
// The deterministic entries cache_crash_writer writes, so a reader can check that
// whatever survived a kill -9 is exactly what was written.
#include <string>

#include "cache/cached_response.h"
#include "cache/hash.h"

namespace frugal::cache::crash {

inline Hash128 key_for(uint64_t i) { return hash128("crash-entry-" + std::to_string(i)); }

inline CachedResponse entry_for(uint64_t i) {
  CachedResponse e;
  // Sizes vary from ~100 B to ~40 KB so writes straddle WAL blocks and buffers.
  const size_t pad = 100 + (i * 7919) % 40000;
  e.completion_json = "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + std::string(pad, static_cast<char>('a' + i % 26)) + "\"}";
  for (uint64_t c = 0; c < i % 5; ++c) e.chunks.push_back("{\"c\":" + std::to_string(c) + "}");
  e.model = "crash-" + std::to_string(i);
  e.route = "crash";
  e.tenant = "t";
  e.usage.input_tokens = static_cast<int64_t>(i);
  e.usage.reported = true;
  return e;
}

// True when `got` is entry i as written (store() sets the timestamps).
inline bool matches(uint64_t i, const CachedResponse& got) {
  CachedResponse want = entry_for(i);
  want.stored_at_ms = got.stored_at_ms;
  want.expires_at_ms = got.expires_at_ms;
  return want == got;
}

}  // namespace frugal::cache::crash
