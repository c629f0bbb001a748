#include "backends/engine/kv_cache.h"

#include <algorithm>
#include <string>

namespace frugal::engine {

size_t KvCache::bytes_per_block(const KvCacheShape& s) {
  return static_cast<size_t>(s.n_layer) * 2 * s.block_size * s.kv_dim * sizeof(float);
}

Result<KvCache> KvCache::create(const KvCacheShape& shape, size_t max_bytes) {
  if (shape.n_layer <= 0 || shape.kv_dim <= 0 || shape.block_size <= 0)
    return make_error(ErrorKind::kInvalidRequest, "kv cache: bad shape");
  const size_t per = bytes_per_block(shape);
  const size_t n = max_bytes / per;
  if (n == 0)
    return make_error(ErrorKind::kInvalidRequest,
                      "kv cache: memory bound of " + std::to_string(max_bytes) +
                          " bytes is below one block (" + std::to_string(per) + " bytes)");
  if (n > (1u << 30)) return make_error(ErrorKind::kInvalidRequest, "kv cache: too many blocks");
  return KvCache(shape, static_cast<int32_t>(n));
}

KvCache::KvCache(const KvCacheShape& shape, int32_t n_blocks)
    : shape_(shape), data_(static_cast<size_t>(n_blocks) * bytes_per_block(shape) / sizeof(float)),
      blocks_(n_blocks) {
  free_.reserve(n_blocks);
  for (int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

uint64_t KvCache::chain_hash(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = parent ^ 0x9E3779B97F4A7C15ULL;
  for (int32_t t : tokens) {
    h ^= static_cast<uint32_t>(t);
    h *= 0x100000001B3ULL;  // FNV prime
    h ^= h >> 29;
  }
  return h * 0xBF58476D1CE4E5B9ULL ^ (h >> 31);
}

KvCache::SeqId KvCache::create_sequence() {
  const SeqId id = next_seq_++;
  seqs_.emplace(id, Sequence{});
  return id;
}

Result<int32_t> KvCache::allocate_block() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    b = lru_.front();
    lru_.pop_front();
    Block& blk = blocks_[b];
    by_hash_.erase(blk.hash);
    blk.registered = false;
    blk.tokens.clear();
    ++evictions_;
  } else {
    return make_error(ErrorKind::kUnavailable, "kv cache out of memory: all " +
                                                   std::to_string(blocks_.size()) +
                                                   " blocks are in use",
                      {}, "kv_cache_full");
  }
  blocks_[b].refs = 1;
  return b;
}

void KvCache::release_block(int32_t b) {
  Block& blk = blocks_[b];
  if (--blk.refs > 0) return;
  if (blk.registered) {
    blk.lru_it = lru_.insert(lru_.end(), b);
  } else {
    free_.push_back(b);
  }
}

int32_t KvCache::attach_prefix(SeqId seq, std::span<const int32_t> tokens, int32_t max_tokens) {
  Sequence& s = seqs_.at(seq);
  const int32_t bs = block_size();
  uint64_t parent = 0;
  int32_t n = 0;
  while (n + bs <= std::min<int32_t>(max_tokens, static_cast<int32_t>(tokens.size()))) {
    const auto chunk = tokens.subspan(n, bs);
    const uint64_t h = chain_hash(parent, chunk);
    auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    Block& blk = blocks_[it->second];
    if (blk.parent != parent || !std::equal(chunk.begin(), chunk.end(), blk.tokens.begin())) break;
    if (blk.refs++ == 0) lru_.erase(blk.lru_it);
    s.blocks.push_back(it->second);
    s.tokens.insert(s.tokens.end(), chunk.begin(), chunk.end());
    s.hashes.push_back(h);
    parent = h;
    n += bs;
  }
  reused_tokens_ += n;
  return n;
}

Result<void> KvCache::reserve(SeqId seq, int32_t n_positions) {
  Sequence& s = seqs_.at(seq);
  const int32_t need = blocks_for(n_positions);
  const size_t had = s.blocks.size();
  while (static_cast<int32_t>(s.blocks.size()) < need) {
    auto b = allocate_block();
    if (!b.ok()) {
      while (s.blocks.size() > had) {  // give back what this call took
        release_block(s.blocks.back());
        s.blocks.pop_back();
      }
      return std::move(b).error();
    }
    s.blocks.push_back(*b);
  }
  return {};
}

void KvCache::commit(SeqId seq, std::span<const int32_t> tokens) {
  Sequence& s = seqs_.at(seq);
  const int32_t bs = block_size();
  s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
  while (static_cast<int32_t>(s.hashes.size()) < static_cast<int32_t>(s.tokens.size()) / bs) {
    const size_t i = s.hashes.size();
    const uint64_t parent = i == 0 ? 0 : s.hashes[i - 1];
    const auto chunk = std::span<const int32_t>(s.tokens).subspan(i * bs, bs);
    const uint64_t h = chain_hash(parent, chunk);
    s.hashes.push_back(h);
    Block& blk = blocks_[s.blocks[i]];
    if (!blk.registered && !by_hash_.contains(h)) {
      blk.registered = true;
      blk.hash = h;
      blk.parent = parent;
      blk.tokens.assign(chunk.begin(), chunk.end());
      by_hash_.emplace(h, s.blocks[i]);
    }
  }
}

void KvCache::shrink(SeqId seq) {
  Sequence& s = seqs_.at(seq);
  const int32_t keep = blocks_for(static_cast<int32_t>(s.tokens.size()));
  while (static_cast<int32_t>(s.blocks.size()) > keep) {
    release_block(s.blocks.back());
    s.blocks.pop_back();
  }
}

void KvCache::free_sequence(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  // Release the tail first so a prefix's blocks end up most recently used in the LRU:
  // the system-prompt blocks that many requests share are evicted last.
  for (auto b = it->second.blocks.rbegin(); b != it->second.blocks.rend(); ++b) release_block(*b);
  seqs_.erase(it);
}

KvCacheStats KvCache::stats() const {
  KvCacheStats st;
  st.n_blocks = static_cast<int32_t>(blocks_.size());
  st.free_blocks = static_cast<int32_t>(free_.size());
  st.cached_blocks = static_cast<int32_t>(lru_.size());
  st.used_blocks = st.n_blocks - st.free_blocks - st.cached_blocks;
  st.reused_tokens = reused_tokens_;
  st.evictions = evictions_;
  return st;
}

}  // namespace frugal::engine
