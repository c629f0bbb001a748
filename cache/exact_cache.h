#pragma once
// The exact response cache: a sharded in-memory LRU (bounded in bytes) in front of
// the RocksDB column family `cache` (bounded in bytes by FIFO compaction).
//
// Threads and blocking:
//  - lookup() never touches disk on the caller's thread. It first asks the memory tier
//    and then RocksDB without I/O (its memtables, block cache and the files' pinned
//    bloom filters: a miss of a key never stored is usually answered there); when that
//    answers, the callback runs inline, before lookup() returns. Otherwise the RocksDB
//    read runs on the cache's internal read pool and the callback runs THERE. Callers on an Asio
//    executor must post back to their own executor/strand inside the callback, e.g.
//      cache.lookup(key, [ex](LookupResult r) { asio::post(ex, [r] { ... }); });
//    Callbacks must be cheap and must not block; they may call back into the cache.
//  - store() inserts into memory at once and queues the RocksDB write for a single
//    batched writer thread, which gathers a batch for up to write_linger after the
//    first queued write; store() never blocks on disk. flush() waits for queued writes.
//  - erase_*() and flush() block (disk scans / waiting for the writer and, for
//    flush(), for pending lookups): call them from an admin or shutdown thread, never
//    from an I/O thread and never from inside a lookup callback (it would wait for
//    itself).
// Ownership: entries are shared_ptr<const CachedResponse>; a reader may keep one
// alive after it is evicted or erased. The ExactCache keeps its Store alive.
// Destruction: runs every pending lookup (callbacks included), flushes queued
// writes, joins its threads. No callback runs after the destructor returns.
//
// Expiry: an entry stored with ttl expires at now+ttl on the injected Clock. Expired
// entries are never returned; they are deleted when seen (lazily) and FIFO
// compaction drops whole files older than CacheDiskOptions::max_ttl.
// Corruption: a value failing its checksum is a miss and is deleted.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "cache/cache_key.h"
#include "cache/cached_response.h"
#include "cache/clock.h"
#include "cache/store.h"
#include "core/error.h"

namespace frugal::cache {

inline constexpr std::string_view kCacheColumnFamily = "cache";

struct CacheDiskOptions {
  uint64_t max_disk_bytes = 1ull << 30;  // FIFO: oldest SST files dropped beyond this
  std::chrono::seconds max_ttl{0};       // FIFO: files older than this dropped; 0 = off
  size_t write_buffer_size = 32u << 20;
};

// The column family spec to pass to Store::open for the exact cache.
ColumnFamilySpec cache_column_family_spec(const CacheDiskOptions& options = {},
                                          std::string name = std::string(kCacheColumnFamily));

struct ExactCacheOptions {
  size_t memory_bytes = 256u << 20;           // memory-tier bound, split evenly over shards
  size_t shards = 16;
  size_t read_threads = 2;                    // RocksDB read pool
  size_t write_batch_max = 256;               // entries per RocksDB WriteBatch
  std::chrono::microseconds write_linger{1000}; // a batch gathers this long (0: write at once)
  size_t max_pending_write_bytes = 64u << 20; // beyond this, store() skips the disk tier
  std::shared_ptr<const Clock> clock;         // default: SystemClock
  std::string column_family = std::string(kCacheColumnFamily);
};

enum class CacheSource { kMiss, kMemory, kDisk };

struct LookupResult {
  std::shared_ptr<const CachedResponse> entry;  // null on a miss
  CacheSource source = CacheSource::kMiss;
  bool hit() const { return entry != nullptr; }
};

struct CacheStats {
  uint64_t memory_hits = 0;
  uint64_t disk_hits = 0;
  uint64_t misses = 0;
  uint64_t expired = 0;       // expired entries seen (and removed)
  uint64_t corrupt = 0;       // values that failed to decode (and were removed)
  uint64_t read_errors = 0;   // RocksDB read failures (served as misses)
  uint64_t write_errors = 0;  // failed WriteBatches
  uint64_t stores = 0;
  uint64_t dropped_writes = 0;  // store() calls whose disk write was skipped (back-pressure)
  uint64_t memory_evictions = 0;
  uint64_t disk_reads = 0;  // lookups RocksDB could not answer without reading the disk (the read pool's)
  uint64_t memory_bytes = 0;
  uint64_t memory_entries = 0;
};

class ExactCache {
 public:
  using LookupCallback = std::function<void(LookupResult)>;

  // The column family named in options must have been opened in `store`
  // (see cache_column_family_spec).
  static Result<std::unique_ptr<ExactCache>> open(std::shared_ptr<Store> store,
                                                  ExactCacheOptions options = {});
  ~ExactCache();
  ExactCache(const ExactCache&) = delete;
  ExactCache& operator=(const ExactCache&) = delete;

  // Answered without disk I/O (see lookup_now): `cb` runs inline. Otherwise `cb` runs
  // later on a read-pool thread with the disk hit (promoted into memory) or a miss.
  // Exactly one call of `cb`.
  void lookup(const CacheKey& key, LookupCallback cb);
  // The memory tier, then RocksDB without I/O (ReadOptions::read_tier = kBlockCacheTier):
  // the answer when one of them has it — a hit (a disk hit is promoted) or a definite
  // miss — and nullopt when answering needs a disk read.
  std::optional<LookupResult> lookup_now(const CacheKey& key);
  // The memory tier only; never blocks on disk. Null on a memory miss.
  std::shared_ptr<const CachedResponse> lookup_memory(const CacheKey& key);

  // Sets entry.stored_at_ms / expires_at_ms (ttl <= 0: never expires), inserts into
  // memory (unless larger than one shard's budget) and queues the disk write.
  // Returns the stored entry.
  std::shared_ptr<const CachedResponse> store(const CacheKey& key, CachedResponse entry,
                                              std::chrono::milliseconds ttl);

  // Blocking (see above). Entries stored concurrently with an erase may survive it.
  void erase(const CacheKey& key);
  Result<void> erase_all();
  Result<size_t> erase_by_route(std::string_view route);    // count removed from disk
  Result<size_t> erase_by_tenant(std::string_view tenant);  // count removed from disk

  // Waits until every queued write (and lazy delete) is in RocksDB (WAL, not synced).
  void flush();
  CacheStats stats() const;

 private:
  struct Impl;
  explicit ExactCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace frugal::cache
