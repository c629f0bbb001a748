#include "cache/prefix.h"

namespace frugal::cache {
namespace {

constexpr uint64_t kPrefixSeed = 0x7072656669785f32ULL;  // "prefix_2"

// Link 0: the scope and the tools.
PrefixHash first_link(const RequestDigest& d, std::string_view scope) {
  HashStream in(kPrefixSeed);
  in.str("frugal.prefix.v2").str(scope).hash(d.tools_hash());
  return in.digest();
}

PrefixHash next_link(const PrefixHash& link, const Hash128& message) {
  HashStream in(kPrefixSeed);
  in.hash(link).hash(message);
  return in.digest();
}

}  // namespace

PrefixChain prefix_chain(const RequestDigest& digest, std::string_view scope) {
  PrefixChain chain;
  chain.links.reserve(digest.message_count() + 1);
  chain.links.push_back(first_link(digest, scope));
  for (size_t i = 0; i < digest.message_count(); ++i)
    chain.links.push_back(next_link(chain.links.back(), digest.message_hash(i)));
  chain.stable_messages = digest.stable_messages();
  return chain;
}

PrefixHash prefix_hash(const RequestDigest& digest, std::string_view scope) {
  PrefixHash link = first_link(digest, scope);
  for (size_t i = 0; i < digest.stable_messages(); ++i) link = next_link(link, digest.message_hash(i));
  return link;
}

PrefixChain prefix_chain(const ChatRequest& req, std::string_view scope) {
  return prefix_chain(digest_request(req), scope);
}

PrefixHash prefix_hash(const ChatRequest& req, std::string_view scope) {
  return prefix_hash(digest_request(req), scope);
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
