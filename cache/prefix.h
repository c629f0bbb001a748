#pragma once
// Prompt-prefix hashing and the index of prefixes seen recently.
//
// A request's prompt is hashed as a chain: link 0 covers the scope and the tools
// (providers and chat templates render tools first), and link i+1 = H(link i,
// hash of message i). Two requests share link k exactly when they agree on the scope, the
// tools and the first k messages, so one hash names a whole prefix. The chain is
// what the engine's KV-cache blocks, provider prompt-cache hints and replica affinity
// (ReplicaPicker) key on.
//
// The *stable* prefix is everything before the last user message: the part the next
// turn of the same conversation (or another request using the same system prompt
// and tools) will repeat.
#include <cstddef>
#include <list>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/cache_key.h"
#include "cache/request_digest.h"
#include "core/chat.h"

namespace frugal::cache {

using PrefixHash = Hash128;

struct PrefixChain {
  // links[0]: scope + tools; links[i + 1]: links[i] + messages[i].
  // links.size() == messages.size() + 1.
  std::vector<PrefixHash> links;
  // Messages in the stable prefix (index of the last user message; all messages when
  // there is none). links[stable_messages] is the stable prefix hash.
  size_t stable_messages = 0;

  PrefixHash stable() const { return links[stable_messages]; }
};

// `scope` separates unrelated namespaces (e.g. the upstream model: KV caches are per
// model). Links are made from the digest's tool and message hashes (request_digest.h),
// so the request is not canonicalised again. Pure and thread-safe.
PrefixChain prefix_chain(const RequestDigest& digest, std::string_view scope = {});
// prefix_chain(digest, scope).stable(), without building the chain.
PrefixHash prefix_hash(const RequestDigest& digest, std::string_view scope = {});
// The same for a request not digested yet.
PrefixChain prefix_chain(const ChatRequest& req, std::string_view scope = {});
PrefixHash prefix_hash(const ChatRequest& req, std::string_view scope = {});

// Remembers prefix links seen recently and finds the longest one a request shares
// with earlier requests. Bounded: least recently seen links are forgotten beyond
// max_links. Thread-safe (one mutex; operations are O(chain length)).
class PrefixIndex {
 public:
  explicit PrefixIndex(size_t max_links = 1u << 20) : max_links_(max_links) {}

  struct Match {
    size_t messages = 0;  // messages covered by the match (0: scope+tools only)
    PrefixHash hash;      // the link that matched
    bool found = false;   // false: not even link 0 was known
  };

  // Records links[0..=upto] (default: the stable prefix) of `chain`.
  void record(const PrefixChain& chain);
  void record(const PrefixChain& chain, size_t upto_messages);
  // The longest recorded link of `chain` (searching from the full chain down).
  Match longest_known(const PrefixChain& chain) const;
  size_t size() const;

 private:
  void touch_locked(const PrefixHash& h, size_t depth);
  mutable std::mutex mu_;
  size_t max_links_;
  struct Node {
    size_t depth;
    std::list<PrefixHash>::iterator lru_it;
  };
  std::list<PrefixHash> lru_;  // front: most recently recorded
  std::unordered_map<PrefixHash, Node, CacheKeyHasher> nodes_;
};

}  // namespace frugal::cache
