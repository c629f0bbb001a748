#pragma once
// POST /v1/embeddings in the request vocabulary. An embeddings request travels the same
// exchange as a chat request (routing, cache, dispatch, ledger): a ChatRequest with no
// messages whose `embeddings` is set. Backends that can embed check that field first
// (an OpenAI-compatible provider forwards the body to {base}/embeddings, the engine
// computes the vectors); the others refuse the request with a 400.
#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chat.h"
#include "core/error.h"

namespace frugal {

// The inputs of an embeddings request, validated as OpenAI does.
struct EmbeddingsInput {
  // Exactly one of these holds the inputs, in order: `input` given as a string or an
  // array of strings, or as an array of token ids or an array of such arrays.
  std::vector<std::string> texts;
  std::vector<std::vector<int64_t>> token_ids;
  bool base64 = false;                // encoding_format "base64" (default "float")
  std::optional<int64_t> dimensions;  // the client asked for shortened vectors

  size_t count() const { return texts.empty() ? token_ids.size() : texts.size(); }
};

// OpenAI's limit on inputs per request.
inline constexpr size_t kMaxEmbeddingInputs = 2048;

// Validates an OpenAI /v1/embeddings body: `model` (a string), `input` (a non-empty
// string, or a non-empty array of non-empty strings, or of token ids, or of non-empty
// arrays of token ids; at most kMaxEmbeddingInputs inputs), `encoding_format` (float |
// base64), `dimensions` (a positive integer), `user` (a string). Other fields are kept
// (forwarded upstream, part of the cache key). Errors are kInvalidRequest naming the
// field. `parser` must outlive the returned request's `root`.
Result<ChatRequest> parse_embeddings_body(simdjson::dom::parser& parser, std::string_view body);

}  // namespace frugal
