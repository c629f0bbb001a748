// Byte-level BPE (tokenizer.ggml.model = "gpt2").
//
// 1. Pre-tokenise: a regex splits the text into words (PCRE2, UTF + UCP so \p{L},
//    \p{N} and \s follow Unicode). Invalid UTF-8 bytes become one-byte words of their
//    own, since PCRE2 cannot match across them.
// 2. Each word's bytes map to GPT-2's printable code points (space -> 'Ġ').
// 3. Adjacent symbols merge by rank (lowest first, ties leftmost) while a merge rule
//    applies; the resulting symbols are vocabulary tokens.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <queue>

#include "backends/engine/format/tokenizer_impl.h"
#include "backends/engine/format/unicode.h"

namespace frugal::engine {

// The split patterns are the published pre-tokenizer regexes of each model family.
namespace {

constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace

class PreTokenizer {
 public:
  explicit PreTokenizer(pcre2_code* code) : code_(code) {}
  ~PreTokenizer() { pcre2_code_free(code_); }
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Calls fn(word) for consecutive words covering all of text.
  template <class Fn>
  void split(std::string_view text, Fn&& fn) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    size_t i = 0;
    while (i < text.size()) {
      // Longest valid UTF-8 run from i.
      size_t end = i;
      while (end < text.size()) {
        const int n = unicode::utf8_valid_len(text, end);
        if (n == 0) break;
        end += static_cast<size_t>(n);
      }
      if (end == i) {  // an invalid byte: a word by itself
        fn(text.substr(i, 1));
        ++i;
        continue;
      }
      split_valid(md, text.substr(i, end - i), fn);
      i = end;
    }
    pcre2_match_data_free(md);
  }

 private:
  template <class Fn>
  void split_valid(pcre2_match_data* md, std::string_view run, Fn&& fn) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(run.data());
    size_t pos = 0, emitted = 0;
    while (pos < run.size()) {
      const int rc = pcre2_match(code_, subject, run.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;  // no more matches: the tail becomes one word below
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t ms = ov[0], me = ov[1];
      if (ms > emitted) fn(run.substr(emitted, ms - emitted));  // text the pattern skipped
      if (me > ms) {
        fn(run.substr(ms, me - ms));
        pos = me;
      } else {
        // Empty match: step one character so the loop advances.
        pos = ms + static_cast<size_t>(unicode::utf8_seq_len(static_cast<uint8_t>(run[ms])));
        if (pos > run.size()) pos = run.size();
        fn(run.substr(ms, pos - ms));
      }
      emitted = pos;
    }
    if (emitted < run.size()) fn(run.substr(emitted));
  }

  pcre2_code* code_;
};

Result<std::shared_ptr<const PreTokenizer>> make_pretokenizer(const std::string& pre) {
  const char* pattern = kGpt2Pattern;
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") pattern = kLlama3Pattern;
  if (pre == "qwen2") pattern = kQwen2Pattern;
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return make_error(ErrorKind::kInternal, std::string("tokenizer: pre-tokenizer regex for '") + pre +
                                                "' failed to compile: " + reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter works without it
  return std::shared_ptr<const PreTokenizer>(std::make_shared<PreTokenizer>(code));
}

namespace {

struct Symbol {
  TokenId id;     // kNoToken if this character is not in the vocabulary
  size_t start, len;
  int prev, next;
};

struct Candidate {
  int32_t rank;
  int left;
  TokenId left_id, right_id;  // to detect stale entries
  bool operator<(const Candidate& o) const {
    if (rank != o.rank) return rank > o.rank;  // lowest rank pops first
    return left > o.left;
  }
};

void encode_word(const Tokenizer::Impl& t, std::string_view word, std::vector<TokenId>& out) {
  const std::string mapped = unicode::bytes_to_gpt2(word);
  if (t.ignore_merges) {
    if (const TokenId whole = t.lookup(mapped); whole != kNoToken) {
      out.push_back(whole);
      return;
    }
  }
  std::vector<Symbol> sym;
  for (size_t i = 0; i < mapped.size();) {
    const auto n = static_cast<size_t>(unicode::utf8_seq_len(static_cast<uint8_t>(mapped[i])));
    sym.push_back({t.lookup(std::string_view(mapped).substr(i, n)), i, n, static_cast<int>(sym.size()) - 1,
                   static_cast<int>(sym.size()) + 1});
    i += n;
  }
  sym.back().next = -1;
  std::priority_queue<Candidate> queue;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0 || sym[left].id == kNoToken || sym[right].id == kNoToken) return;
    const uint64_t key = static_cast<uint64_t>(static_cast<uint32_t>(sym[left].id)) << 32 |
                         static_cast<uint32_t>(sym[right].id);
    auto it = t.merge_ranks.find(key);
    if (it == t.merge_ranks.end()) return;
    queue.push({it->second, left, sym[left].id, sym[right].id});
  };
  for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = sym[c.left];
    if (left.len == 0 || left.next < 0 || left.id != c.left_id) continue;
    Symbol& right = sym[left.next];
    if (right.id != c.right_id) continue;
    const TokenId merged = t.lookup(std::string_view(mapped).substr(left.start, left.len + right.len));
    if (merged == kNoToken) continue;  // a merge rule whose result is not a token
    left.id = merged;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = c.left;
    try_add(left.prev, c.left);
    try_add(c.left, left.next);
  }
  for (int i = 0; i >= 0; i = sym[i].next) {
    if (sym[i].id != kNoToken) {
      out.push_back(sym[i].id);
    } else if (t.unk != kNoToken) {
      out.push_back(t.unk);
    }
  }
}

}  // namespace

void bpe_encode(const Tokenizer::Impl& t, std::string_view text, std::vector<TokenId>& out) {
  if (text.empty() || !t.pretokenizer) return;
  t.pretokenizer->split(text, [&](std::string_view word) { encode_word(t, word, out); });
}

}  // namespace frugal::engine
