#pragma once
// Shared state of a Tokenizer and the two model-specific encoders. Internal.
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/engine/format/tokenizer.h"

namespace frugal::engine {

class PreTokenizer;  // tokenizer_bpe.cpp: compiled PCRE2 pattern

struct Tokenizer::Impl {
  TokenizerModel model = TokenizerModel::kSpm;
  std::string pre = "default";
  std::vector<std::string> tokens;
  std::vector<float> scores;      // SPM merge priority (higher first); empty for BPE
  std::vector<TokenType> types;
  std::unordered_map<std::string_view, TokenId> token_ids;  // views into tokens
  TokenId bos = kNoToken, eos = kNoToken, eot = kNoToken, unk = kNoToken;
  std::vector<TokenId> end_of_generation;
  bool add_bos = true;
  bool add_space_prefix = true;  // SPM dummy prefix
  std::array<TokenId, 256> byte_tokens{};  // SPM <0xNN>; kNoToken when absent

  // BPE: rank of merging (left id, right id); key = left << 32 | right.
  std::unordered_map<uint64_t, int32_t> merge_ranks;
  std::shared_ptr<const PreTokenizer> pretokenizer;
  // Llama-3's tokenizer takes a word that is already a token as is, without merging
  // (HF "ignore_merges"); GPT-2 and Qwen2 always run the merges.
  bool ignore_merges = false;

  // Special tokens matched in input text, longest first per first byte.
  std::array<std::vector<TokenId>, 256> specials_by_first_byte;

  TokenId lookup(std::string_view text) const {
    auto it = token_ids.find(text);
    return it == token_ids.end() ? kNoToken : it->second;
  }
  float score(TokenId id) const { return id >= 0 && static_cast<size_t>(id) < scores.size() ? scores[id] : 0.0f; }
};

// Appends the tokens of one fragment of raw text (no special tokens inside).
// with_prefix: SPM adds its dummy-prefix space to this fragment.
void spm_encode(const Tokenizer::Impl& t, std::string_view text, bool with_prefix, std::vector<TokenId>& out);
void bpe_encode(const Tokenizer::Impl& t, std::string_view text, std::vector<TokenId>& out);

// Compiles the pre-tokenizer for tokenizer.ggml.pre; errors only if PCRE2 rejects it.
Result<std::shared_ptr<const PreTokenizer>> make_pretokenizer(const std::string& pre);

}  // namespace frugal::engine
