// Synthetic tokenizers and random-weight llama / qwen2 models, for tests and
// benchmarks of realistic shape without shipping real weights.
#include <cmath>
#include <cstdio>
#include <memory>
#include <unordered_set>

#include "backends/engine/format/gguf_writer.h"
#include "backends/engine/format/unicode.h"

namespace frugal::engine {
namespace {

// Token types as llama.cpp stores them in tokenizer.ggml.token_type.
constexpr int32_t kTypeNormal = 1;
constexpr int32_t kTypeUnknown = 2;
constexpr int32_t kTypeControl = 3;
constexpr int32_t kTypeUnused = 5;
constexpr int32_t kTypeByte = 6;

constexpr const char* kSpace = "\xE2\x96\x81";  // U+2581 '▁', SentencePiece's space

// Common English words: their prefixes become merged pieces, so encoding English text
// with a synthetic vocabulary produces multi-character tokens, as real ones do.
constexpr const char* kWords[] = {
    "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are", "as",
    "with", "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but",
    "not", "what", "all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each",
    "which", "she", "do", "how", "their", "if", "will", "up", "other", "about", "out", "many", "then",
    "them", "these", "so", "some", "her", "would", "make", "like", "him", "into", "time", "has", "look",
    "two", "more", "write", "go", "see", "number", "no", "way", "could", "people", "my", "than", "first",
    "water", "been", "call", "who", "its", "now", "find", "long", "down", "day", "did", "get", "come",
    "made", "may", "part", "hello", "world", "model", "token", "answer", "question", "please", "thank",
};

constexpr const char* kLlama2Template =
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<<SYS>>\\n' + message['content'] + "
    "'\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'] + "
    "' [/INST]' }}{% else %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% endfor %}";
constexpr const char* kLlama3Template =
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
constexpr const char* kChatmlTemplate =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// Candidate filler pieces beyond the word prefixes: letter pairs, then triples.
std::vector<std::string> filler_pieces() {
  std::vector<std::string> out;
  for (char a = 'a'; a <= 'z'; ++a) {
    for (char b = 'a'; b <= 'z'; ++b) out.push_back(std::string{a, b});
  }
  for (char a = 'a'; a <= 'z'; ++a) {
    for (char b = 'a'; b <= 'z'; ++b) {
      for (char c = 'a'; c <= 'z'; ++c) out.push_back(std::string{a, b, c});
    }
  }
  return out;
}

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::vector<std::string> merges;  // BPE only
  std::unordered_set<std::string> seen;

  bool add(const std::string& t, float score, int32_t type) {
    if (!seen.insert(t).second) return false;
    tokens.push_back(t);
    scores.push_back(score);
    types.push_back(type);
    return true;
  }
};

Result<void> too_small(int n_vocab, size_t need) {
  return make_error(ErrorKind::kInvalidRequest, "synthetic tokenizer: n_vocab " + std::to_string(n_vocab) +
                                                    " is too small; need at least " + std::to_string(need));
}

Result<void> spm_tokenizer(GgufWriter& w, int n_vocab) {
  Vocab v;
  v.add("<unk>", 0, kTypeUnknown);
  v.add("<s>", 0, kTypeControl);
  v.add("</s>", 0, kTypeControl);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    v.add(buf, 0, kTypeByte);
  }
  const size_t base = v.tokens.size() + 1 + 95;
  if (static_cast<size_t>(n_vocab) < base) return too_small(n_vocab, base);
  // Scores fall with insertion order, so earlier pieces merge first.
  float score = 0;
  const auto piece = [&](const std::string& p) {
    if (v.tokens.size() < static_cast<size_t>(n_vocab)) v.add(p, score -= 1, kTypeNormal);
  };
  piece(kSpace);
  for (char c = 33; c < 127; ++c) piece(std::string(1, c));
  for (const char* word : kWords) {
    const std::string s = word;
    for (size_t len = 1; len <= s.size(); ++len) piece(kSpace + s.substr(0, len));
  }
  for (const auto& f : filler_pieces()) {
    piece(f);
    piece(kSpace + f);
  }
  for (int k = 0; v.tokens.size() < static_cast<size_t>(n_vocab); ++k) {
    v.add("<unused" + std::to_string(k) + ">", 0, kTypeUnused);
  }
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string("tokenizer.ggml.pre", "default");
  w.set_string_array("tokenizer.ggml.tokens", v.tokens);
  w.set_f32_array("tokenizer.ggml.scores", v.scores);
  w.set_i32_array("tokenizer.ggml.token_type", v.types);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
  w.set_bool("tokenizer.ggml.add_space_prefix", true);
  w.set_string("tokenizer.chat_template", kLlama2Template);
  return {};
}

Result<void> bpe_tokenizer(GgufWriter& w, TokenizerKind kind, int n_vocab) {
  const bool llama3 = kind == TokenizerKind::kBpeLlama3;
  const std::vector<std::string> specials =
      llama3 ? std::vector<std::string>{"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                        "<|end_header_id|>", "<|eot_id|>"}
             : std::vector<std::string>{"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  const size_t need = 256 + specials.size() + 1;
  if (static_cast<size_t>(n_vocab) < need) return too_small(n_vocab, need);
  const size_t n_regular = static_cast<size_t>(n_vocab) - specials.size();
  Vocab v;
  for (int b = 0; b < 256; ++b) {
    std::string t;
    unicode::append_utf8(t, unicode::byte_to_codepoint(static_cast<uint8_t>(b)));
    v.add(t, 0, kTypeNormal);
  }
  // Each merged token is left + right, both already in the vocabulary; merges are
  // ranked in insertion order.
  const std::string g = unicode::bytes_to_gpt2(" ");  // "Ġ"
  const auto merge = [&](const std::string& left, const std::string& right) {
    if (v.tokens.size() >= n_regular || !v.seen.count(left) || !v.seen.count(right)) return;
    if (v.add(left + right, 0, kTypeNormal)) v.merges.push_back(left + " " + right);
  };
  for (const char* word : kWords) {
    const std::string s = word;
    std::string prev = g;
    for (size_t k = 0; k < s.size(); ++k) {
      merge(prev, s.substr(k, 1));
      prev += s.substr(k, 1);
    }
  }
  for (const auto& f : filler_pieces()) {
    merge(f.substr(0, f.size() - 1), f.substr(f.size() - 1));
    merge(g, f);
  }
  for (int k = 0; v.tokens.size() < n_regular; ++k) v.add("<|reserved_" + std::to_string(k) + "|>", 0, kTypeUnused);
  const auto first_special = static_cast<uint32_t>(v.tokens.size());
  for (const auto& s : specials) v.add(s, 0, kTypeControl);
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", llama3 ? "llama-bpe" : "qwen2");
  w.set_string_array("tokenizer.ggml.tokens", v.tokens);
  w.set_i32_array("tokenizer.ggml.token_type", v.types);
  w.set_string_array("tokenizer.ggml.merges", v.merges);
  if (llama3) {
    w.set_u32("tokenizer.ggml.bos_token_id", first_special + 0);
    w.set_u32("tokenizer.ggml.eos_token_id", first_special + 4);
    w.set_u32("tokenizer.ggml.eot_token_id", first_special + 4);
    w.set_bool("tokenizer.ggml.add_bos_token", true);
    w.set_string("tokenizer.chat_template", kLlama3Template);
  } else {
    w.set_u32("tokenizer.ggml.bos_token_id", first_special + 0);
    w.set_u32("tokenizer.ggml.eos_token_id", first_special + 2);
    w.set_u32("tokenizer.ggml.eot_token_id", first_special + 2);
    w.set_bool("tokenizer.ggml.add_bos_token", false);
    w.set_string("tokenizer.chat_template", kChatmlTemplate);
  }
  return {};
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t name_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ull;
  uint64_t s = seed ^ h;
  return splitmix64(s);
}

// Rows of uniform values in center +- half_width, deterministic per (seed, name).
// Rows are produced in order, so one generator state per tensor is enough.
GgufWriter::RowFn uniform_rows(uint64_t seed, const std::string& name, int64_t row_len, float center,
                               float half_width) {
  auto state = std::make_shared<uint64_t>(name_seed(seed, name));
  return [state, row_len, center, half_width](int64_t, float* row) {
    for (int64_t i = 0; i < row_len; ++i) {
      // 24 random bits -> [0, 1) -> [-1, 1)
      const float u = static_cast<float>(splitmix64(*state) >> 40) * (1.0f / 16777216.0f);
      row[i] = center + half_width * (2.0f * u - 1.0f);
    }
  };
}

// file_type values llama.cpp shows for a whole-model type.
uint32_t file_type_of(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: return 0;
    case GgmlType::kF16: return 1;
    case GgmlType::kQ4_0: return 2;
    case GgmlType::kQ8_0: return 7;
    case GgmlType::kQ5_0: return 8;
    case GgmlType::kQ5_1: return 9;
    case GgmlType::kQ4_K: return 15;  // Q4_K_M
    case GgmlType::kQ6_K: return 18;
    case GgmlType::kBF16: return 32;
    default: return 0;
  }
}

}  // namespace

Result<void> add_synthetic_tokenizer(GgufWriter& w, TokenizerKind kind, int n_vocab) {
  if (kind == TokenizerKind::kBpeLlama3 || kind == TokenizerKind::kBpeQwen2) return bpe_tokenizer(w, kind, n_vocab);
  return spm_tokenizer(w, n_vocab);
}

Result<void> make_random_model(const ModelShape& s, GgmlType type, uint64_t seed, const std::string& path) {
  const auto bad = [](const std::string& m) { return make_error(ErrorKind::kInvalidRequest, "make_random_model: " + m); };
  if (s.arch != "llama" && s.arch != "qwen2") return bad("unsupported architecture '" + s.arch + "'");
  if (s.n_layer <= 0 || s.n_embd <= 0 || s.n_head <= 0 || s.n_head_kv <= 0 || s.n_ff <= 0 || s.n_vocab <= 0 ||
      s.context <= 0) {
    return bad("all sizes must be positive");
  }
  if (s.n_embd % s.n_head != 0 || (s.n_embd / s.n_head) % 2 != 0) return bad("n_embd / n_head must be an even integer");
  if (s.n_head % s.n_head_kv != 0) return bad("n_head_kv must divide n_head");
  if (!has_reference_kernels(type)) return bad(std::string("no quantiser for ") + type_name(type));

  const std::string& a = s.arch;
  const int head_dim = s.n_embd / s.n_head;
  const int kv_dim = head_dim * s.n_head_kv;
  const bool bias = s.qkv_bias < 0 ? a == "qwen2" : s.qkv_bias > 0;
  TokenizerKind tok = s.tokenizer;
  if (tok == TokenizerKind::kDefault) tok = a == "qwen2" ? TokenizerKind::kBpeQwen2 : TokenizerKind::kSpm;

  GgufWriter w;
  w.set_string("general.architecture", a);
  w.set_string("general.name", s.name);
  w.set_u32("general.file_type", file_type_of(type));
  w.set_u32(a + ".context_length", static_cast<uint32_t>(s.context));
  w.set_u32(a + ".embedding_length", static_cast<uint32_t>(s.n_embd));
  w.set_u32(a + ".block_count", static_cast<uint32_t>(s.n_layer));
  w.set_u32(a + ".feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.set_u32(a + ".attention.head_count", static_cast<uint32_t>(s.n_head));
  w.set_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  w.set_u32(a + ".rope.dimension_count", static_cast<uint32_t>(head_dim));
  w.set_f32(a + ".rope.freq_base", s.rope_base);
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", s.rms_eps);
  w.set_u32(a + ".vocab_size", static_cast<uint32_t>(s.n_vocab));
  FRUGAL_TRY(add_synthetic_tokenizer(w, tok, s.n_vocab));

  // Matrices: ne = {n_in, n_out}; values uniform with std 1/sqrt(n_in).
  const auto matrix = [&](const std::string& name, int n_in, int n_out) -> Result<void> {
    GgmlType t = type;
    if (n_in % block_size(t) != 0) t = n_in % kQK8_0 == 0 ? GgmlType::kQ8_0 : GgmlType::kF16;
    const float half_width = std::sqrt(3.0f / static_cast<float>(n_in));
    return w.add_tensor_rows(name, {n_in, n_out}, t, uniform_rows(seed, name, n_in, 0.0f, half_width));
  };
  const auto vector = [&](const std::string& name, int n, float center, float half_width) -> Result<void> {
    return w.add_tensor_rows(name, {n}, GgmlType::kF32, uniform_rows(seed, name, n, center, half_width));
  };

  FRUGAL_TRY(matrix("token_embd.weight", s.n_embd, s.n_vocab));
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    FRUGAL_TRY(vector(p + "attn_norm.weight", s.n_embd, 1.0f, 0.1f));
    FRUGAL_TRY(matrix(p + "attn_q.weight", s.n_embd, s.n_embd));
    FRUGAL_TRY(matrix(p + "attn_k.weight", s.n_embd, kv_dim));
    FRUGAL_TRY(matrix(p + "attn_v.weight", s.n_embd, kv_dim));
    if (bias) {
      FRUGAL_TRY(vector(p + "attn_q.bias", s.n_embd, 0.0f, 0.05f));
      FRUGAL_TRY(vector(p + "attn_k.bias", kv_dim, 0.0f, 0.05f));
      FRUGAL_TRY(vector(p + "attn_v.bias", kv_dim, 0.0f, 0.05f));
    }
    FRUGAL_TRY(matrix(p + "attn_output.weight", s.n_embd, s.n_embd));
    FRUGAL_TRY(vector(p + "ffn_norm.weight", s.n_embd, 1.0f, 0.1f));
    FRUGAL_TRY(matrix(p + "ffn_gate.weight", s.n_embd, s.n_ff));
    FRUGAL_TRY(matrix(p + "ffn_up.weight", s.n_embd, s.n_ff));
    FRUGAL_TRY(matrix(p + "ffn_down.weight", s.n_ff, s.n_embd));
  }
  FRUGAL_TRY(vector("output_norm.weight", s.n_embd, 1.0f, 0.1f));
  if (!s.tied_embeddings) FRUGAL_TRY(matrix("output.weight", s.n_embd, s.n_vocab));
  return w.write(path);
}

}  // namespace frugal::engine
