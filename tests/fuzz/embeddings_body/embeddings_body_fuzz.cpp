// A client's /v1/embeddings body as frugal reads it: validation (core/embeddings.cpp)
// and the exact-cache key derived from the accepted request.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cache/cache_key.h"
#include "core/embeddings.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  simdjson::dom::parser parser;
  auto req = parse_embeddings_body(parser, body);
  fuzz::accepted(req.ok());
  if (req.ok()) {
    fuzz::require(req->embeddings && req->embeddings->count() > 0,
                  "an embeddings request without inputs");
    fuzz::require(req->embeddings->count() <= kMaxEmbeddingInputs || req->embeddings->texts.empty(),
                  "more string inputs than allowed");
    const cache::KeyScope scope{"route", "model", "tenant", false};
    fuzz::require(cache::make_cache_key(*req, scope) == cache::make_cache_key(*req, scope),
                  "the cache key is not a function of the request");
    fuzz::require(cache::is_cacheable_by_default(*req),
                  "an embeddings request that is not cacheable");
  } else {
    fuzz::require(!req.error().message.empty(), "a rejection without a message");
  }
  return 0;
}
