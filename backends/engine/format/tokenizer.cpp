// Tokenizer construction from GGUF metadata, special-token partitioning, decoding and
// streaming. The model-specific encoders are in tokenizer_spm.cpp / tokenizer_bpe.cpp.
#include "backends/engine/format/tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "backends/engine/format/tokenizer_impl.h"
#include "backends/engine/format/unicode.h"

namespace frugal::engine {
namespace {

const std::string kEmpty;

Error tok_error(const std::string& msg) { return make_error(ErrorKind::kInvalidRequest, "tokenizer: " + msg); }

// An optional token-id key; absent or out of range -> fallback.
Result<TokenId> optional_id(const GgufFile& f, const char* key, TokenId fallback, size_t n_vocab) {
  if (!f.has(key)) return fallback;
  auto v = f.get_u32(key);
  if (!v) return std::move(v).error();
  return *v < n_vocab ? static_cast<TokenId>(*v) : fallback;
}

// "<0x0A>" -> 10; -1 if the text is not a byte token.
int parse_byte_token(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  int v = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = s[i];
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return -1;
    }
    v = v * 16 + d;
  }
  return v;
}

}  // namespace

Result<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  auto impl = std::make_shared<Impl>();
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model) return std::move(model).error();
  if (*model == "llama") {
    impl->model = TokenizerModel::kSpm;
  } else if (*model == "gpt2") {
    impl->model = TokenizerModel::kBpe;
  } else {
    return tok_error("tokenizer.ggml.model '" + *model + "' is not supported (expected 'llama' or 'gpt2')");
  }
  const bool spm = impl->model == TokenizerModel::kSpm;
  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) return std::move(tokens).error();
  if (tokens->empty() || tokens->size() > static_cast<size_t>(INT32_MAX)) {
    return tok_error("tokenizer.ggml.tokens must hold 1..2^31-1 tokens");
  }
  impl->tokens = std::move(*tokens);
  const size_t n = impl->tokens.size();
  if (f.has("tokenizer.ggml.scores")) {
    auto scores = f.get_f32_array("tokenizer.ggml.scores");
    if (!scores) return std::move(scores).error();
    if (scores->size() != n) return tok_error("tokenizer.ggml.scores has a different length than the tokens");
    impl->scores = std::move(*scores);
  }
  impl->types.assign(n, TokenType::kNormal);
  if (f.has("tokenizer.ggml.token_type")) {
    auto types = f.get_i32_array("tokenizer.ggml.token_type");
    if (!types) return std::move(types).error();
    if (types->size() != n) return tok_error("tokenizer.ggml.token_type has a different length than the tokens");
    for (size_t i = 0; i < n; ++i) impl->types[i] = static_cast<TokenType>((*types)[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    // First occurrence wins if a (broken) vocabulary repeats a string.
    impl->token_ids.emplace(impl->tokens[i], static_cast<TokenId>(i));
  }
  if (f.has("tokenizer.ggml.pre")) {
    auto pre = f.get_string("tokenizer.ggml.pre");
    if (!pre) return std::move(pre).error();
    impl->pre = *pre;
  }

  const TokenId unk_guess = spm ? impl->lookup("<unk>") : kNoToken;
  auto unk = optional_id(f, "tokenizer.ggml.unknown_token_id", unk_guess, n);
  auto bos = optional_id(f, "tokenizer.ggml.bos_token_id", spm ? 1 % static_cast<TokenId>(n) : kNoToken, n);
  auto eos = optional_id(f, "tokenizer.ggml.eos_token_id", spm ? 2 % static_cast<TokenId>(n) : kNoToken, n);
  auto eot = optional_id(f, "tokenizer.ggml.eot_token_id", kNoToken, n);
  if (!unk) return std::move(unk).error();
  if (!bos) return std::move(bos).error();
  if (!eos) return std::move(eos).error();
  if (!eot) return std::move(eot).error();
  impl->unk = *unk;
  impl->bos = *bos;
  impl->eos = *eos;
  impl->eot = *eot;
  if (impl->eot == kNoToken) {
    // Older files do not name the end-of-turn token; recognise the common ones.
    for (const char* name : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"}) {
      if (TokenId id = impl->lookup(name); id != kNoToken) {
        impl->eot = id;
        break;
      }
    }
  }
  for (TokenId id : {impl->eos, impl->eot}) {
    if (id != kNoToken) impl->end_of_generation.push_back(id);
  }
  auto add_bos = f.get_bool_or("tokenizer.ggml.add_bos_token", spm);
  if (!add_bos) return std::move(add_bos).error();
  impl->add_bos = *add_bos;
  auto prefix = f.get_bool_or("tokenizer.ggml.add_space_prefix", true);
  if (!prefix) return std::move(prefix).error();
  impl->add_space_prefix = *prefix;

  impl->byte_tokens.fill(kNoToken);
  if (spm) {
    for (size_t i = 0; i < n; ++i) {
      const int b = parse_byte_token(impl->tokens[i]);
      if (b >= 0 && impl->byte_tokens[static_cast<size_t>(b)] == kNoToken) {
        impl->byte_tokens[static_cast<size_t>(b)] = static_cast<TokenId>(i);
      }
    }
  } else {
    auto merges = f.get_string_array("tokenizer.ggml.merges");
    if (!merges) return std::move(merges).error();
    for (size_t r = 0; r < merges->size(); ++r) {
      const std::string& m = (*merges)[r];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) continue;
      const TokenId left = impl->lookup(std::string_view(m).substr(0, sp));
      const TokenId right = impl->lookup(std::string_view(m).substr(sp + 1));
      if (left == kNoToken || right == kNoToken) continue;
      const uint64_t key = static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
      impl->merge_ranks.emplace(key, static_cast<int32_t>(r));
    }
    impl->ignore_merges = impl->pre == "llama-bpe" || impl->pre == "llama3" || impl->pre == "llama-v3";
    auto pre = make_pretokenizer(impl->pre);
    if (!pre) return std::move(pre).error();
    impl->pretokenizer = std::move(*pre);
  }

  for (size_t i = 0; i < n; ++i) {
    const TokenType type = impl->types[i];
    if ((type == TokenType::kControl || type == TokenType::kUserDefined) && !impl->tokens[i].empty()) {
      impl->specials_by_first_byte[static_cast<uint8_t>(impl->tokens[i][0])].push_back(static_cast<TokenId>(i));
    }
  }
  for (auto& list : impl->specials_by_first_byte) {
    std::stable_sort(list.begin(), list.end(), [&](TokenId a, TokenId b) {
      return impl->tokens[static_cast<size_t>(a)].size() > impl->tokens[static_cast<size_t>(b)].size();
    });
  }
  return Tokenizer(std::move(impl));
}

TokenizerModel Tokenizer::model() const { return impl_->model; }
const std::string& Tokenizer::pre() const { return impl_->pre; }
int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(impl_->tokens.size()); }
TokenId Tokenizer::bos() const { return impl_->bos; }
TokenId Tokenizer::eos() const { return impl_->eos; }
TokenId Tokenizer::eot() const { return impl_->eot; }
bool Tokenizer::add_bos_default() const { return impl_->add_bos; }

bool Tokenizer::is_end_of_generation(TokenId id) const {
  return id != kNoToken && std::find(impl_->end_of_generation.begin(), impl_->end_of_generation.end(), id) !=
                               impl_->end_of_generation.end();
}

const std::string& Tokenizer::token_text(TokenId id) const {
  return id >= 0 && id < n_vocab() ? impl_->tokens[static_cast<size_t>(id)] : kEmpty;
}

TokenType Tokenizer::token_type(TokenId id) const {
  return id >= 0 && id < n_vocab() ? impl_->types[static_cast<size_t>(id)] : TokenType::kUndefined;
}

std::optional<TokenId> Tokenizer::find_token(std::string_view text) const {
  const TokenId id = impl_->lookup(text);
  return id == kNoToken ? std::nullopt : std::optional<TokenId>(id);
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  const Impl& t = *impl_;
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos && t.bos != kNoToken) out.push_back(t.bos);
  // SPM adds its dummy prefix to the first text fragment and to text that follows a
  // special token (as llama.cpp does, matching SentencePiece run on each fragment).
  bool after_special = true;
  size_t frag = 0;
  const auto flush = [&](size_t end) {
    if (end > frag) {
      const std::string_view piece = text.substr(frag, end - frag);
      if (t.model == TokenizerModel::kSpm) {
        spm_encode(t, piece, t.add_space_prefix && after_special, out);
      } else {
        bpe_encode(t, piece, out);
      }
      after_special = false;
    }
  };
  for (size_t i = 0; i < text.size();) {
    TokenId match = kNoToken;
    for (TokenId id : t.specials_by_first_byte[static_cast<uint8_t>(text[i])]) {
      if (t.types[static_cast<size_t>(id)] == TokenType::kControl && !parse_special) continue;
      const std::string& s = t.tokens[static_cast<size_t>(id)];
      if (text.compare(i, s.size(), s) == 0) {
        match = id;
        break;  // longest first
      }
    }
    if (match == kNoToken) {
      ++i;
      continue;
    }
    flush(i);
    out.push_back(match);
    after_special = true;
    i += t.tokens[static_cast<size_t>(match)].size();
    frag = i;
  }
  flush(text.size());
  return out;
}

std::string Tokenizer::token_to_piece(TokenId id, bool render_special) const {
  if (id < 0 || id >= n_vocab()) return {};
  const Impl& t = *impl_;
  const std::string& text = t.tokens[static_cast<size_t>(id)];
  switch (t.types[static_cast<size_t>(id)]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
    case TokenType::kUnused: return render_special ? text : std::string();
    case TokenType::kUserDefined: return text;
    case TokenType::kByte:
      if (t.model == TokenizerModel::kSpm) {
        const int b = parse_byte_token(text);
        if (b >= 0) return std::string(1, static_cast<char>(b));
      }
      break;
    default: break;
  }
  std::string out;
  if (t.model == TokenizerModel::kSpm) {
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
        out += ' ';
        i += 3;
      } else {
        out += text[i++];
      }
    }
    return out;
  }
  // BPE: map each code point back to its byte; code points outside GPT-2's map (rare,
  // hand-added tokens) are kept as UTF-8.
  for (size_t i = 0; i < text.size();) {
    const int len = unicode::utf8_valid_len(text, i);
    if (len == 0) {
      out += text[i++];
      continue;
    }
    const uint32_t cp = unicode::decode_utf8(text, i, len);
    const int b = unicode::codepoint_to_byte(cp);
    if (b >= 0) {
      out += static_cast<char>(b);
    } else {
      out.append(text, i, static_cast<size_t>(len));
    }
    i += static_cast<size_t>(len);
  }
  return out;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool render_special, bool strip_space_prefix) const {
  std::string out;
  bool first_text = true;
  for (TokenId id : ids) {
    std::string piece = token_to_piece(id, render_special);
    if (piece.empty()) continue;
    const TokenType type = token_type(id);
    const bool is_text = type != TokenType::kControl && type != TokenType::kUnknown && type != TokenType::kUnused;
    if (first_text && is_text && strip_space_prefix && impl_->model == TokenizerModel::kSpm &&
        impl_->add_space_prefix && piece[0] == ' ') {
      piece.erase(0, 1);
    }
    if (is_text) first_text = false;
    out += piece;
  }
  return out;
}

std::string StreamDecoder::push(TokenId id) {
  pending_ += tokenizer_->token_to_piece(id, render_special_);
  // Emit up to the start of a trailing, still-incomplete UTF-8 sequence.
  size_t cut = pending_.size();
  for (size_t back = 1; back <= 3 && back <= pending_.size(); ++back) {
    const auto c = static_cast<uint8_t>(pending_[pending_.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    if (c >= 0xC0 && static_cast<size_t>(unicode::utf8_seq_len(c)) > back) cut = pending_.size() - back;
    break;
  }
  std::string out = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace frugal::engine
