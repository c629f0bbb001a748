// Stored cache entries read back (cache/cached_response.cpp): a value from the cache's
// column family must decode or be rejected, never crash. The input is tried as stored
// and re-sealed with a valid checksum (its last 8 bytes replaced), so that mutations
// reach the field decoding behind the checksum. A decoded entry must encode to the same
// bytes and replay in both forms (a chat.completion body and a chunk stream).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backends/dialect/openai_stream_assembly.h"
#include "cache/cached_response.h"
#include "cache/hash.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

void check_entry(std::string_view bytes) {
  using namespace frugal;
  auto entry = cache::decode_entry(bytes);
  auto expiry = cache::peek_expiry(bytes);
  if (!entry.ok()) return;
  fuzz::require(expiry.ok(), "peek_expiry rejects a decodable entry");
  fuzz::require(*expiry == entry->expires_at_ms, "peek_expiry disagrees with the entry");
  fuzz::require(cache::encode_entry(*entry) == bytes, "the entry does not re-encode to its bytes");
  (void)entry->byte_size();
  if (entry->completion_json.empty()) (void)assemble_completion_from_chunks(entry->chunks);
  else (void)chunks_from_completion(entry->completion_json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  fuzz::accepted(cache::decode_entry(bytes).ok());
  check_entry(bytes);
  if (size >= 8) {
    std::string sealed(bytes.substr(0, size - 8));
    const uint64_t sum = cache::hash64(sealed, cache::kEntryChecksumSeed);
    for (int i = 0; i < 8; ++i) sealed += static_cast<char>((sum >> (8 * i)) & 0xff);
    check_entry(sealed);
  }
  return 0;
}
