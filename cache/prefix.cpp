#include "cache/prefix.h"

#include "cache/canonical_json.h"

namespace frugal::cache {
namespace {

constexpr uint64_t kPrefixSeed = 0x7072656669785f31ULL;  // "prefix_1"

// Only what the model sees: roles, names, content and tool calls/ids.
void put_message(HashInput& in, const Message& m) {
  in.tag('M').str(m.role).str(m.name).str(m.tool_call_id);
  in.u64(m.parts.size());
  for (const auto& p : m.parts) {
    switch (p.kind) {
      case ContentPart::Kind::kText: in.tag('t').str(p.text); break;
      case ContentPart::Kind::kImage: in.tag('i').str(p.image_url).str(p.detail); break;
      case ContentPart::Kind::kOther: in.tag('o').str(canonical_json_or_raw(p.raw_json)); break;
    }
  }
  in.u64(m.tool_calls.size());
  for (const auto& tc : m.tool_calls) in.str(tc.id).str(tc.name).str(canonical_json_or_raw(tc.arguments));
}

}  // namespace

PrefixChain prefix_chain(const ChatRequest& req, std::string_view scope) {
  PrefixChain chain;
  chain.links.reserve(req.messages.size() + 1);
  HashInput in;
  in.str("frugal.prefix.v1").str(scope).u64(req.tools.size());
  for (const auto& t : req.tools) {
    in.str(t.name).str(t.description);
    in.str(t.parameters_json.empty() ? std::string() : canonical_json_or_raw(t.parameters_json));
  }
  chain.links.push_back(in.digest(kPrefixSeed));
  for (const auto& m : req.messages) {
    in.clear();
    in.hash(chain.links.back());
    put_message(in, m);
    chain.links.push_back(in.digest(kPrefixSeed));
  }
  chain.stable_messages = req.messages.size();
  for (size_t i = req.messages.size(); i > 0; --i) {
    if (req.messages[i - 1].role == "user") {
      chain.stable_messages = i - 1;
      break;
    }
  }
  return chain;
}

PrefixHash prefix_hash(const ChatRequest& req, std::string_view scope) {
  return prefix_chain(req, scope).stable();
}

void PrefixIndex::touch_locked(const PrefixHash& h, size_t depth) {
  if (auto it = nodes_.find(h); it != nodes_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru_it);
    return;
  }
  lru_.push_front(h);
  nodes_.emplace(h, Node{depth, lru_.begin()});
  while (nodes_.size() > max_links_) {
    nodes_.erase(lru_.back());
    lru_.pop_back();
  }
}

void PrefixIndex::record(const PrefixChain& chain) { record(chain, chain.stable_messages); }

void PrefixIndex::record(const PrefixChain& chain, size_t upto_messages) {
  const size_t last = std::min(upto_messages, chain.links.size() - 1);
  std::lock_guard lk(mu_);
  for (size_t i = 0; i <= last; ++i) touch_locked(chain.links[i], i);
}

PrefixIndex::Match PrefixIndex::longest_known(const PrefixChain& chain) const {
  std::lock_guard lk(mu_);
  for (size_t i = chain.links.size(); i > 0; --i) {
    if (auto it = nodes_.find(chain.links[i - 1]); it != nodes_.end() && it->second.depth == i - 1)
      return Match{i - 1, chain.links[i - 1], true};
  }
  return Match{};
}

size_t PrefixIndex::size() const {
  std::lock_guard lk(mu_);
  return nodes_.size();
}

}  // namespace frugal::cache
