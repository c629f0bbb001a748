#pragma once
// Paged KV cache: fixed-size blocks of block_size positions, a block table per sequence,
// and prefix reuse across requests. A full block whose tokens are all committed is
// registered under a hash chain (hash of the parent block's hash and the block's
// tokens); a new sequence whose prompt starts with the same tokens attaches those
// blocks instead of recomputing them. Blocks nobody references but that are still
// registered stay resident and are evicted least-recently-released first when a
// sequence needs a fresh block.
//
// Threading: engine thread only (no locks). Storage: f32, per block and layer a K and a
// V matrix of (block_size, kv_dim), so a block holds one span of positions for all layers.
#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/error.h"

namespace frugal::engine {

struct KvCacheShape {
  int32_t n_layer = 0;
  int32_t kv_dim = 0;  // n_head_kv * head_dim
  int32_t block_size = 16;
};

struct KvCacheStats {
  int32_t n_blocks = 0;
  int32_t free_blocks = 0;     // never-used or released, unregistered
  int32_t cached_blocks = 0;   // registered, unreferenced: reusable or evictable
  int32_t used_blocks = 0;     // referenced by at least one sequence
  uint64_t reused_tokens = 0;  // prompt tokens served from cached blocks, all time
  uint64_t evictions = 0;
};

class KvCache {
 public:
  using SeqId = int32_t;

  // n_blocks = max_bytes / bytes_per_block(shape); an error if that is 0.
  static Result<KvCache> create(const KvCacheShape& shape, size_t max_bytes);
  static size_t bytes_per_block(const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }
  int32_t block_size() const { return shape_.block_size; }

  // K/V rows of `block` for `layer`: (block_size, kv_dim) each.
  float* k(int32_t block, int32_t layer) { return data_.data() + offset(block, layer); }
  float* v(int32_t block, int32_t layer) { return k(block, layer) + layer_stride(); }
  const float* k(int32_t block, int32_t layer) const { return data_.data() + offset(block, layer); }
  const float* v(int32_t block, int32_t layer) const { return k(block, layer) + layer_stride(); }

  SeqId create_sequence();
  // Attaches cached blocks for the longest block-aligned prefix of tokens, covering at
  // most max_tokens positions; returns the number of positions attached (these count as
  // committed). Only valid on an empty sequence.
  int32_t attach_prefix(SeqId seq, std::span<const int32_t> tokens, int32_t max_tokens);
  // Makes room for positions [0, n_positions). Errors (kUnavailable) when no block can be
  // freed; the sequence keeps what it had.
  Result<void> reserve(SeqId seq, int32_t n_positions);
  // Appends tokens whose K/V are now written at the next positions; newly full blocks
  // are registered for reuse.
  void commit(SeqId seq, std::span<const int32_t> tokens);
  // Releases blocks beyond the committed positions (after a speculative rollback).
  void shrink(SeqId seq);
  void free_sequence(SeqId seq);

  int32_t committed(SeqId seq) const { return static_cast<int32_t>(seqs_.at(seq).tokens.size()); }
  const std::vector<int32_t>& block_table(SeqId seq) const { return seqs_.at(seq).blocks; }
  // Blocks a sequence of n positions needs.
  int32_t blocks_for(int32_t n_positions) const { return (n_positions + block_size() - 1) / block_size(); }
  KvCacheStats stats() const;
  // Blocks that could be handed out right now (free + evictable).
  int32_t available_blocks() const { return static_cast<int32_t>(free_.size() + lru_.size()); }

 private:
  struct Block {
    int32_t refs = 0;
    bool registered = false;
    uint64_t hash = 0;
    uint64_t parent = 0;
    std::vector<int32_t> tokens;  // when registered, to verify hash hits
    std::list<int32_t>::iterator lru_it;
  };
  struct Sequence {
    std::vector<int32_t> blocks;
    std::vector<int32_t> tokens;  // committed
    std::vector<uint64_t> hashes; // chain hash per full block
  };

  KvCache(const KvCacheShape& shape, int32_t n_blocks);
  size_t layer_stride() const { return static_cast<size_t>(shape_.block_size) * shape_.kv_dim; }
  size_t offset(int32_t block, int32_t layer) const {
    return (static_cast<size_t>(block) * shape_.n_layer + layer) * 2 * layer_stride();
  }
  Result<int32_t> allocate_block();
  void release_block(int32_t b);
  static uint64_t chain_hash(uint64_t parent, std::span<const int32_t> tokens);

  KvCacheShape shape_;
  std::vector<float> data_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;
  std::list<int32_t> lru_;  // registered, refs == 0; front = least recently released
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::unordered_map<SeqId, Sequence> seqs_;
  SeqId next_seq_ = 0;
  uint64_t reused_tokens_ = 0;
  uint64_t evictions_ = 0;
};

}  // namespace frugal::engine
