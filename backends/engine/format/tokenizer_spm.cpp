// SentencePiece-style BPE (tokenizer.ggml.model = "llama").
//
// The text becomes one symbol per UTF-8 character; then, repeatedly, the adjacent pair
// whose concatenation is a vocabulary piece with the highest score is merged (ties:
// leftmost first), until no adjacent pair forms a piece. Symbols that are not pieces
// (characters outside the vocabulary) fall back to their bytes' <0xNN> tokens.
#include <queue>

#include "backends/engine/format/tokenizer_impl.h"
#include "backends/engine/format/unicode.h"

namespace frugal::engine {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

struct Symbol {
  size_t start;   // byte range in the normalised text
  size_t len;     // 0 once merged into its left neighbour
  int prev, next;  // linked list over live symbols; -1 at the ends
};

struct Bigram {
  float score;
  int left;
  size_t len;  // combined length when queued; stale if the symbols changed since
  bool operator<(const Bigram& o) const {
    // std::priority_queue pops the largest: highest score, then leftmost.
    if (score != o.score) return score < o.score;
    return left > o.left;
  }
};

}  // namespace

void spm_encode(const Tokenizer::Impl& t, std::string_view raw, bool with_prefix, std::vector<TokenId>& out) {
  if (raw.empty()) return;  // SentencePiece encodes "" as no tokens, not as the prefix
  std::string text;
  text.reserve(raw.size() * 3 + 3);
  if (with_prefix) text += kSpace;
  for (char c : raw) {
    if (c == ' ') {
      text += kSpace;
    } else {
      text += c;
    }
  }
  if (text.empty()) return;

  std::vector<Symbol> sym;
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::min(static_cast<size_t>(unicode::utf8_seq_len(static_cast<uint8_t>(text[i]))), text.size() - i);
    sym.push_back({i, n, static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1});
    i += n;
  }
  sym.back().next = -1;

  std::priority_queue<Bigram> queue;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t len = sym[left].len + sym[right].len;
    const TokenId id = t.lookup(std::string_view(text).substr(sym[left].start, len));
    if (id == kNoToken) return;
    queue.push({t.score(id), left, len});
  };
  for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& left = sym[b.left];
    if (left.len == 0 || left.next < 0) continue;
    Symbol& right = sym[left.next];
    if (left.len + right.len != b.len) continue;  // stale entry
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = b.left;
    try_add(left.prev, b.left);
    try_add(b.left, left.next);
  }

  for (int i = 0; i >= 0; i = sym[i].next) {
    const std::string_view piece = std::string_view(text).substr(sym[i].start, sym[i].len);
    const TokenId id = t.lookup(piece);
    if (id != kNoToken) {
      out.push_back(id);
      continue;
    }
    for (char c : piece) {
      const TokenId byte = t.byte_tokens[static_cast<uint8_t>(c)];
      if (byte != kNoToken) {
        out.push_back(byte);
      } else if (t.unk != kNoToken) {
        out.push_back(t.unk);
      }
    }
  }
}

}  // namespace frugal::engine
