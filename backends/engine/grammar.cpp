#include "backends/engine/grammar.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>

#include "backends/engine/engine.h"

namespace frugal::engine {
namespace {
constexpr int32_t kUnknown = -2;  // a DFA transition not computed yet
constexpr int32_t kFar = std::numeric_limits<int32_t>::max() / 4;
}  // namespace

int32_t ByteNfa::literal(int32_t from, std::string_view bytes) {
  int32_t at = from;
  for (char c : bytes) {
    const int32_t to = add_state();
    const auto b = static_cast<uint8_t>(c);
    range(at, b, b, to);
    at = to;
  }
  return at;
}

std::shared_ptr<const VocabTrie> VocabTrie::build(const TokenText& text, int32_t n_vocab) {
  auto trie = std::make_shared<VocabTrie>();
  VocabTrie& t = *trie;
  t.pieces_.resize(static_cast<size_t>(n_vocab));
  t.is_end_.assign(static_cast<size_t>(n_vocab), 0);
  // Build with ordered child maps, then lay the nodes out with contiguous children.
  struct BuildNode {
    std::map<uint8_t, int32_t> children;
    std::vector<int32_t> tokens;
  };
  std::vector<BuildNode> b(1);
  for (int32_t id = 0; id < n_vocab; ++id) {
    if (text.is_end_of_generation(id)) {
      t.is_end_[id] = 1;
      t.end_tokens_.push_back(id);
      continue;
    }
    t.pieces_[id] = text.piece(id);
    const std::string& p = t.pieces_[id];
    if (p.empty()) continue;
    int32_t node = 0;
    for (char c : p) {
      const auto byte = static_cast<uint8_t>(c);
      auto it = b[node].children.find(byte);
      if (it == b[node].children.end()) {
        b.emplace_back();
        it = b[node].children.emplace(byte, static_cast<int32_t>(b.size() - 1)).first;
      }
      node = it->second;
    }
    b[node].tokens.push_back(id);
  }
  t.nodes_.resize(b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    Node& n = t.nodes_[i];
    n.first_child = static_cast<int32_t>(t.children_.size());
    n.n_children = static_cast<int32_t>(b[i].children.size());
    for (const auto& [byte, child] : b[i].children) t.children_.push_back({byte, child});
    n.first_token = static_cast<int32_t>(t.tokens_.size());
    n.n_tokens = static_cast<int32_t>(b[i].tokens.size());
    t.tokens_.insert(t.tokens_.end(), b[i].tokens.begin(), b[i].tokens.end());
  }
  return trie;
}

size_t Grammar::SetHash::operator()(const std::vector<int32_t>& v) const {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int32_t x : v) h = (h ^ static_cast<uint32_t>(x)) * 0x100000001b3ULL;
  return static_cast<size_t>(h);
}

Grammar::Grammar(ByteNfa nfa, std::shared_ptr<const VocabTrie> vocab) : nfa_(std::move(nfa)), vocab_(std::move(vocab)) {
  // Shortest completion per NFA state: 0-1 BFS from accept over reversed edges
  // (epsilon edges cost 0 bytes, byte edges 1).
  const int32_t n = nfa_.size();
  std::vector<std::vector<std::pair<int32_t, int32_t>>> rev(static_cast<size_t>(n));
  for (int32_t s = 0; s < n; ++s) {
    for (int32_t to : nfa_.state(s).eps) rev[to].push_back({s, 0});
    for (const ByteNfa::Edge& e : nfa_.state(s).edges) rev[e.to].push_back({s, 1});
  }
  nfa_dist_.assign(static_cast<size_t>(n), kFar);
  std::deque<int32_t> q;
  nfa_dist_[nfa_.accept] = 0;
  q.push_back(nfa_.accept);
  while (!q.empty()) {
    const int32_t s = q.front();
    q.pop_front();
    for (auto [from, w] : rev[s]) {
      if (nfa_dist_[s] + w >= nfa_dist_[from]) continue;
      nfa_dist_[from] = nfa_dist_[s] + w;
      if (w == 0) q.push_front(from);
      else q.push_back(from);
    }
  }
  if (intern({nfa_.start}) == kDead) {  // nothing is accepted: a start state with no way on
    DfaState none;
    none.next.fill(kDead);
    none.dist = kFar;
    none.steps_ready = true;
    dfa_.push_back(std::move(none));
  }
}

void Grammar::close(std::vector<int32_t>& set) {
  // Visited marks are stamped with a generation, so a closure costs what it visits.
  if (seen_.empty()) seen_.assign(static_cast<size_t>(nfa_.size()), 0);
  if (++generation_ == 0) {
    std::fill(seen_.begin(), seen_.end(), 0);
    generation_ = 1;
  }
  std::vector<int32_t> todo = set;
  set.clear();
  while (!todo.empty()) {
    const int32_t s = todo.back();
    todo.pop_back();
    if (seen_[s] == generation_) continue;
    seen_[s] = generation_;
    // States that cannot reach accept are dead weight.
    if (nfa_dist_[s] < kFar) set.push_back(s);
    for (int32_t to : nfa_.state(s).eps) todo.push_back(to);
  }
  std::sort(set.begin(), set.end());
}

int32_t Grammar::intern(std::vector<int32_t> set) {
  close(set);
  if (set.empty()) return kDead;
  if (auto it = ids_.find(set); it != ids_.end()) return it->second;
  if (static_cast<int32_t>(dfa_.size()) >= kMaxStates) {
    overflowed_ = true;
    return kDead;
  }
  DfaState d;
  d.next.fill(kUnknown);
  d.dist = kFar;
  for (int32_t s : set) {
    if (s == nfa_.accept) d.accepting = true;
    if (!nfa_.state(s).edges.empty()) d.has_edges = true;
    d.dist = std::min(d.dist, nfa_dist_[s]);
  }
  d.set = set;
  const auto id = static_cast<int32_t>(dfa_.size());
  dfa_.push_back(std::move(d));
  ids_.emplace(std::move(set), id);
  return id;
}

int32_t Grammar::next(int32_t state, uint8_t byte) {
  if (state < 0) return kDead;
  const int32_t cached = dfa_[state].next[byte];
  if (cached != kUnknown) return cached;
  std::vector<int32_t> targets;
  for (int32_t s : dfa_[state].set)
    for (const ByteNfa::Edge& e : nfa_.state(s).edges)
      if (byte >= e.lo && byte <= e.hi) targets.push_back(e.to);
  const int32_t id = targets.empty() ? kDead : intern(std::move(targets));
  dfa_[state].next[byte] = id;  // dfa_ may have grown: index again
  return id;
}

int32_t Grammar::next(int32_t state, std::string_view bytes) {
  for (char c : bytes) {
    state = next(state, static_cast<uint8_t>(c));
    if (state < 0) return kDead;
  }
  return state;
}

int32_t Grammar::tokens_to_finish(int32_t state) const {
  const DfaState& d = dfa_[state];
  if (d.accepting) return d.has_edges ? 1 : 0;
  return d.dist + 1;
}

const std::vector<Grammar::Step>& Grammar::steps(int32_t state) {
  if (dfa_[state].steps_ready) return dfa_[state].steps;
  std::vector<Step> out;
  const auto& nodes = vocab_->nodes();
  const auto& children = vocab_->children();
  const auto& tokens = vocab_->tokens();
  // Depth-first over the trie, carrying the DFA state reached by each node's prefix.
  std::vector<std::pair<int32_t, int32_t>> stack{{0, state}};
  while (!stack.empty()) {
    const auto [node, s] = stack.back();
    stack.pop_back();
    const VocabTrie::Node& n = nodes[node];
    for (int32_t c = n.first_child; c < n.first_child + n.n_children; ++c) {
      const int32_t ns = next(s, children[c].byte);
      if (ns < 0) continue;
      const VocabTrie::Node& child = nodes[children[c].node];
      for (int32_t i = child.first_token; i < child.first_token + child.n_tokens; ++i) out.push_back({tokens[i], ns});
      if (child.n_children > 0) stack.push_back({children[c].node, ns});
    }
  }
  if (cached_steps_ + out.size() > kMaxCachedSteps) {
    scratch_ = std::move(out);
    return scratch_;
  }
  cached_steps_ += out.size();
  DfaState& d = dfa_[state];
  d.steps = std::move(out);
  d.steps_ready = true;
  return d.steps;
}

bool GrammarMatcher::allows(int32_t token) {
  const VocabTrie& v = grammar_->vocab();
  if (token < 0 || token >= v.n_vocab()) return false;
  if (v.is_end(token)) return grammar_->accepting(state_);
  const std::string& p = v.piece(token);
  if (p.empty()) return false;
  const int32_t ns = grammar_->next(state_, p);
  return ns >= 0 && grammar_->tokens_to_finish(ns) <= budget_;
}

void GrammarMatcher::mask(std::span<float> logits) {
  const std::vector<Grammar::Step>& steps = grammar_->steps(state_);
  std::vector<uint8_t> keep(logits.size(), 0);
  bool any = false;
  for (const Grammar::Step& s : steps) {
    if (grammar_->tokens_to_finish(s.next) > budget_) continue;
    keep[s.token] = 1;
    any = true;
  }
  if (grammar_->accepting(state_)) {
    for (int32_t t : grammar_->vocab().end_tokens()) keep[t] = 1;
    any = any || !grammar_->vocab().end_tokens().empty();
  }
  if (!any) {
    // No token keeps the output finishable in the tokens left (max_tokens is below the
    // shortest completion): head for the end as fast as possible; it stops at `length`.
    int32_t best = kFar;
    for (const Grammar::Step& s : steps) best = std::min(best, grammar_->tokens_to_finish(s.next));
    for (const Grammar::Step& s : steps)
      if (grammar_->tokens_to_finish(s.next) == best) keep[s.token] = 1;
  }
  for (size_t i = 0; i < logits.size(); ++i)
    if (!keep[i]) logits[i] = -std::numeric_limits<float>::infinity();
}

bool GrammarMatcher::accept(int32_t token) {
  const VocabTrie& v = grammar_->vocab();
  if (token < 0 || token >= v.n_vocab()) return false;
  if (v.is_end(token)) return grammar_->accepting(state_);
  const std::string& p = v.piece(token);
  if (p.empty()) return false;
  const int32_t ns = grammar_->next(state_, p);
  if (ns < 0) return false;
  state_ = ns;
  return true;
}

}  // namespace frugal::engine
