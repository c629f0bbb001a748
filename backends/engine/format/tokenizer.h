#pragma once
// Tokenizers built from GGUF metadata (tokenizer.ggml.*):
//   model "llama": SentencePiece-style score-ordered BPE over characters, spaces as
//                  U+2581 with a dummy prefix, byte fallback to <0xNN> tokens;
//   model "gpt2":  byte-level BPE (GPT-2 byte->unicode map, rank-ordered merges) after a
//                  regex pre-tokenizer chosen by tokenizer.ggml.pre (llama-bpe, qwen2,
//                  otherwise GPT-2's), run with PCRE2 in UTF + UCP mode.
// Special tokens: user-defined tokens are always matched as whole tokens in the input;
// control tokens (<s>, <|eot_id|>, <|im_start|>...) only when parse_special is set,
// which is what prompt text rendered by a chat template needs.
//
// Thread safety: a Tokenizer is immutable after from_gguf() and cheap to copy (shared
// state); encode/decode may run concurrently. A StreamDecoder is per stream.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/engine/format/gguf.h"
#include "core/error.h"

namespace frugal::engine {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// Values of tokenizer.ggml.token_type (llama.cpp's numbering).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// tokenizer.ggml.model: "llama" -> kSpm, "gpt2" -> kBpe.
enum class TokenizerModel { kSpm, kBpe };

class Tokenizer {
 public:
  // Errors name the offending key (missing tokens, wrong types, unknown model).
  static Result<Tokenizer> from_gguf(const GgufFile& file);

  TokenizerModel model() const;
  // tokenizer.ggml.pre, or "default".
  const std::string& pre() const;
  int32_t n_vocab() const;
  TokenId bos() const;  // kNoToken if the vocabulary has none
  TokenId eos() const;
  TokenId eot() const;  // end of turn (<|eot_id|>, <|im_end|>); kNoToken if absent
  // True for eos, eot and other end-of-generation control tokens the vocab names.
  bool is_end_of_generation(TokenId id) const;
  // tokenizer.ggml.add_bos_token (default: true for llama/SPM, false for gpt2).
  bool add_bos_default() const;

  // Encodes text. add_bos prepends bos() (if any). Never fails: bytes with no token
  // fall back to byte tokens (SPM) or the unknown token.
  std::vector<TokenId> encode(std::string_view text, bool add_bos, bool parse_special) const;

  // The vocabulary entry as stored (e.g. "▁Hello", "Ġthe", "<0x0A>"); empty if out of range.
  const std::string& token_text(TokenId id) const;
  TokenType token_type(TokenId id) const;
  std::optional<TokenId> find_token(std::string_view text) const;

  // The bytes a token contributes to output text ("▁Hello" -> " Hello", "<0x0A>" ->
  // "\n"). Control and unknown tokens give "" unless render_special. May be a partial
  // UTF-8 sequence (byte tokens); use StreamDecoder to stream.
  std::string token_to_piece(TokenId id, bool render_special = false) const;
  // Concatenated pieces. strip_space_prefix removes the single leading space that SPM's
  // dummy prefix added, so decode(encode(s)) == s; leave it off for a continuation.
  std::string decode(std::span<const TokenId> ids, bool render_special = false, bool strip_space_prefix = true) const;

  struct Impl;  // defined in tokenizer_impl.h

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Turns a stream of token ids into text chunks that are always whole UTF-8 characters:
// bytes of a character split across tokens are held back until it completes. Invalid
// sequences are passed through as they are rather than held forever.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = false)
      : tokenizer_(&tokenizer), render_special_(render_special) {}
  // Text that became complete with this token (possibly empty).
  std::string push(TokenId id);
  // Whatever is still held back (an unfinished sequence), at end of stream.
  std::string finish();

 private:
  const Tokenizer* tokenizer_;  // must outlive the decoder
  bool render_special_;
  std::string pending_;
};

}  // namespace frugal::engine
