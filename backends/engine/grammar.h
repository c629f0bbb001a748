#pragma once
// Constrained decoding: which tokens may come next so that the output stays a prefix of
// a sentence of a grammar.
//
//  - ByteNfa: a Thompson NFA over bytes (epsilon edges and byte-range edges). The JSON
//    schema compiler (json_schema_grammar.h) builds one per request.
//  - VocabTrie: the vocabulary's token byte strings (TokenText::piece) in a trie, so a
//    mask is found by walking the trie with the automaton instead of testing every
//    token: a subtree whose prefix the automaton rejects is skipped whole.
//  - Grammar: the NFA determinised lazily (a DFA state is an epsilon-closed set of NFA
//    states, its 256 transitions filled on first use) plus, per DFA state, the tokens
//    that may follow and the state each leads to (computed once, on first need).
//  - GrammarMatcher: one request's position in its Grammar, as a TokenFilter for the
//    Sampler. It also keeps the output finishable within max_tokens: a token is allowed
//    only if, after it, the shortest completion (in bytes, each byte being one token at
//    worst — byte tokens exist in SentencePiece and byte-level BPE vocabularies) plus an
//    end-of-sequence token still fits in the tokens left.
//
// Threads: VocabTrie is immutable and shared by every request of a model. A Grammar and
// its matcher are built on a request thread and then used by one thread at a time (the
// engine's scheduler thread); they are not thread-safe.
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/engine/sampler.h"

namespace frugal::engine {

class TokenText;

class ByteNfa {
 public:
  struct Edge {
    uint8_t lo, hi;  // inclusive byte range
    int32_t to;
  };
  struct State {
    std::vector<int32_t> eps;
    std::vector<Edge> edges;
  };

  int32_t add_state() {
    states_.emplace_back();
    return static_cast<int32_t>(states_.size() - 1);
  }
  void epsilon(int32_t from, int32_t to) { states_[from].eps.push_back(to); }
  void range(int32_t from, uint8_t lo, uint8_t hi, int32_t to) { states_[from].edges.push_back({lo, hi, to}); }
  // Appends `bytes` after `from`; returns the state after the last byte.
  int32_t literal(int32_t from, std::string_view bytes);

  int32_t size() const { return static_cast<int32_t>(states_.size()); }
  const State& state(int32_t s) const { return states_[s]; }

  int32_t start = -1;
  int32_t accept = -1;  // the single final state

 private:
  std::vector<State> states_;
};

class VocabTrie {
 public:
  // Tokens whose piece is empty (control tokens) are left out; end-of-generation tokens
  // are listed apart (they end the output when the grammar accepts).
  static std::shared_ptr<const VocabTrie> build(const TokenText& text, int32_t n_vocab);

  struct Node {
    int32_t first_child = 0;  // children are edges_[first_child, first_child + n_children)
    int32_t n_children = 0;
    int32_t first_token = 0;  // tokens spelled by the path to this node: tokens_[first, first + n)
    int32_t n_tokens = 0;
  };
  struct Child {
    uint8_t byte;
    int32_t node;
  };

  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  const std::string& piece(int32_t token) const { return pieces_[token]; }
  bool is_end(int32_t token) const { return is_end_[token] != 0; }
  const std::vector<int32_t>& end_tokens() const { return end_tokens_; }
  const std::vector<Node>& nodes() const { return nodes_; }  // nodes_[0] is the root
  const std::vector<Child>& children() const { return children_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  std::vector<std::string> pieces_;
  std::vector<uint8_t> is_end_;
  std::vector<int32_t> end_tokens_;
  std::vector<Node> nodes_;
  std::vector<Child> children_;
  std::vector<int32_t> tokens_;
};

class Grammar {
 public:
  static constexpr int32_t kDead = -1;
  // Bound on DFA states; past it next() reports kDead and overflowed() is set.
  static constexpr int32_t kMaxStates = 50'000;

  Grammar(ByteNfa nfa, std::shared_ptr<const VocabTrie> vocab);

  int32_t start() const { return 0; }
  int32_t next(int32_t state, uint8_t byte);
  int32_t next(int32_t state, std::string_view bytes);
  // A complete sentence ends here.
  bool accepting(int32_t state) const { return dfa_[state].accepting; }
  // Complete, and nothing may follow: the output is finished.
  bool terminal(int32_t state) const { return dfa_[state].accepting && !dfa_[state].has_edges; }
  // Tokens still needed to finish from here, at most: 0 when terminal, else the
  // shortest completion in bytes plus one end-of-sequence token.
  int32_t tokens_to_finish(int32_t state) const;
  // Bytes of the shortest completion from the start state.
  int32_t min_bytes() const { return dfa_[0].dist; }
  bool overflowed() const { return overflowed_; }

  struct Step {
    int32_t token;
    int32_t next;
  };
  // Every non-control token that may follow `state`, with the state it leads to
  // (cached per state while the cached lists total at most kMaxCachedSteps entries;
  // past that, a list is recomputed on every call and valid only until the next one).
  // End-of-generation tokens are not listed: see accepting().
  const std::vector<Step>& steps(int32_t state);
  static constexpr size_t kMaxCachedSteps = size_t{4} << 20;  // 32 MiB of Steps

  const VocabTrie& vocab() const { return *vocab_; }
  int32_t dfa_states() const { return static_cast<int32_t>(dfa_.size()); }

 private:
  struct DfaState {
    std::vector<int32_t> set;  // sorted NFA states, epsilon-closed
    bool accepting = false;
    bool has_edges = false;
    int32_t dist = 0;  // bytes of the shortest completion
    std::array<int32_t, 256> next;
    bool steps_ready = false;
    std::vector<Step> steps;
  };
  struct SetHash {
    size_t operator()(const std::vector<int32_t>& v) const;
  };
  int32_t intern(std::vector<int32_t> set);
  void close(std::vector<int32_t>& set);

  ByteNfa nfa_;
  std::shared_ptr<const VocabTrie> vocab_;
  std::vector<int32_t> nfa_dist_;  // bytes from each NFA state to accept
  std::vector<DfaState> dfa_;
  std::unordered_map<std::vector<int32_t>, int32_t, SetHash> ids_;
  bool overflowed_ = false;
  size_t cached_steps_ = 0;
  std::vector<uint32_t> seen_;  // close(): visited in the current generation
  uint32_t generation_ = 0;
  std::vector<Step> scratch_;  // steps() past the cache bound
};

// One request's walk through a Grammar.
class GrammarMatcher final : public TokenFilter {
 public:
  explicit GrammarMatcher(std::shared_ptr<Grammar> grammar) : grammar_(std::move(grammar)) {}

  // Tokens that may still be generated after the next one (max_tokens left minus one).
  void set_budget(int32_t tokens_after_next) { budget_ = tokens_after_next; }
  bool allows(int32_t token) override;
  void mask(std::span<float> logits) override;
  // Advances over a sampled token; false if the grammar rejects it (it then stays put).
  bool accept(int32_t token);
  // The output is a complete sentence and nothing may follow.
  bool complete() const { return grammar_->terminal(state_); }
  bool accepting() const { return grammar_->accepting(state_); }
  int32_t state() const { return state_; }
  const Grammar& grammar() const { return *grammar_; }

 private:
  std::shared_ptr<Grammar> grammar_;
  int32_t state_ = 0;
  int32_t budget_ = 1 << 30;
};

}  // namespace frugal::engine
