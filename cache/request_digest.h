#pragma once
// The canonical digest of a request's prompt, computed once per request: the exact
// cache key (cache_key.h) and the prompt-prefix chain (prefix.h) are both derived
// from it, so the messages and tools are canonicalised (tool-call arguments, tool
// schemas and non-text parts re-serialised as canonical JSON) only once.
//
// It holds the canonical bytes of the messages and of the tools exactly as the cache
// key hashes them (the key's format is unchanged by the digest), the hash of each
// message and of the tools (the prefix chain's links are made from those), and the
// length of the stable prefix. One heap buffer holds all of it.
#include <cstddef>
#include <string>
#include <string_view>

#include "cache/hash.h"
#include "core/chat.h"

namespace frugal::cache {

class RequestDigest {
 public:
  // 'm', message count, then each message: role, name, tool_call_id, content parts
  // (text; image url and detail; other parts as canonical JSON), tool calls (id, name,
  // canonical arguments).
  std::string_view message_bytes() const { return view(messages_at_, tools_at_); }
  // 'f', tool count, then each tool: name, description, canonical parameter schema.
  std::string_view tool_bytes() const { return view(tools_at_, buf_.size()); }
  size_t message_count() const { return messages_; }
  // Hash of message i's canonical bytes (i < message_count()).
  Hash128 message_hash(size_t i) const;
  const Hash128& tools_hash() const { return tools_hash_; }
  // Messages before the last user message (all of them when there is none): the part
  // the next turn of the same conversation repeats.
  size_t stable_messages() const { return stable_messages_; }

 private:
  friend RequestDigest digest_request(const ChatRequest& req);
  std::string_view view(size_t from, size_t to) const { return {buf_.data() + from, to - from}; }
  // [message_count() × 16-byte message hash][message bytes][tool bytes]
  std::string buf_;
  size_t messages_ = 0;
  size_t messages_at_ = 0;
  size_t tools_at_ = 0;
  size_t stable_messages_ = 0;
  Hash128 tools_hash_;
};

// Pure and thread-safe; never fails (JSON that does not parse is taken raw).
RequestDigest digest_request(const ChatRequest& req);

}  // namespace frugal::cache
