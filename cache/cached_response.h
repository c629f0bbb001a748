#pragma once
// What the exact cache stores for one answer, and its serialised form.
//
// An entry keeps the answer the way the upstream delivered it: the non-streamed
// OpenAI chat.completion body, the ordered OpenAI chat.completion.chunk payloads (the
// JSON after "data: ", without the final "[DONE]"), or both. The cache stores bytes
// only: turning one form into the other (a plain request answered from chunks, a
// streamed one from a body) is backends/dialect/openai_stream_assembly.h, called by
// the gateway's replay.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/usage.h"

namespace frugal::cache {

struct CachedResponse {
  std::string completion_json;      // chat.completion body; "" when only chunks were kept
  std::vector<std::string> chunks;  // chat.completion.chunk payloads in order; may be empty
  std::string model;                // upstream model that produced the answer
  Usage usage;                      // what the original request consumed (cost avoided)
  int64_t created_s = 0;            // the answer's "created" (Unix seconds)
  int64_t stored_at_ms = 0;         // set by ExactCache::store
  int64_t expires_at_ms = 0;        // set by ExactCache::store; 0 = never expires
  std::string route;                // for erase_by_route
  std::string tenant;               // for erase_by_tenant; "" for shared entries

  // Approximate heap footprint, for the memory tier's byte bound.
  size_t byte_size() const;
  bool expired_at(int64_t now_ms) const { return expires_at_ms != 0 && now_ms >= expires_at_ms; }

  bool operator==(const CachedResponse&) const;
};

// Serialisation. Layout (little-endian):
//   u8 version | u64 expires_at_ms | u64 stored_at_ms | fields... | u64 checksum
// where checksum = hash64 of every preceding byte. Decoding verifies the version,
// every length and the checksum, and rejects trailing bytes; a torn or corrupted
// value is an error (the cache treats it as a miss and deletes it).
inline constexpr uint8_t kEntryFormatVersion = 1;
inline constexpr uint64_t kEntryChecksumSeed = 0x63616368655f7631ULL;  // "cache_v1"
std::string encode_entry(const CachedResponse& e);
Result<CachedResponse> decode_entry(std::string_view bytes);
// Reads only the expiry field (after verifying the checksum). Cheap pre-filter.
Result<int64_t> peek_expiry(std::string_view bytes);

}  // namespace frugal::cache
