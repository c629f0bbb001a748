#pragma once
// What the exact cache stores for one answer, and how it is replayed in either form.
//
// An entry keeps the answer the way the upstream delivered it: the non-streamed
// OpenAI chat.completion body, the ordered OpenAI chat.completion.chunk payloads (the
// JSON after "data: ", without the final "[DONE]"), or both. A plain request can be
// answered from chunks (assemble_completion_from_chunks) and a streamed one from a
// body (chunks_from_completion); dialect codecs in gateway/ translate from there.
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

// The chat.completion body: completion_json if present, else assembled from chunks.
Result<std::string> completion_body(const CachedResponse& e);
// The chunk payloads: chunks if present, else synthesised from completion_json.
Result<std::vector<std::string>> stream_chunks(const CachedResponse& e);

// Merges OpenAI stream chunks into one chat.completion body: per choice index the
// role, content and refusal deltas are concatenated, tool calls are merged by their
// index (id/type/name from the first delta that has them, arguments concatenated),
// logprobs.content/refusal arrays are concatenated, and the last non-null
// finish_reason wins. id, created, model and system_fingerprint come from the first
// chunk that has them; usage is the last non-null usage object, passed through.
// Fails (kUpstream) on a chunk that is not a JSON object or on no chunks.
Result<std::string> assemble_completion_from_chunks(const std::vector<std::string>& chunks);

// Synthesises a chunk sequence equivalent to a chat.completion body: per choice a
// role chunk, content (and refusal) in a few pieces split on UTF-8 boundaries with
// the choice's logprobs attached to the first content piece, one chunk opening each
// tool call followed by its arguments in pieces, a finish chunk; then one usage chunk
// (empty choices) when the body has usage. Fails (kUpstream) on a body that is not a
// chat.completion object.
Result<std::vector<std::string>> chunks_from_completion(std::string_view completion_json);

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
