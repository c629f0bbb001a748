#include "cache/exact_cache.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cache/blocking_pool.h"

namespace frugal::cache {
namespace {

// Keys on disk are the 16 big-endian bytes of the CacheKey; this bound sorts after
// all of them, so [16 x 00, kEndKey) covers the whole column family.
const std::string kBeginKey(16, '\0');
const std::string kEndKey(17, '\xff');

struct Shard {
  using Lru = std::list<std::pair<CacheKey, std::shared_ptr<const CachedResponse>>>;
  std::mutex mu;
  Lru lru;  // front = most recently used
  std::unordered_map<CacheKey, Lru::iterator, CacheKeyHasher> index;
  size_t bytes = 0;
};

struct WriteOp {
  std::string key;                              // encoded CacheKey
  std::shared_ptr<const CachedResponse> entry;  // null: delete
};

}  // namespace

ColumnFamilySpec cache_column_family_spec(const CacheDiskOptions& options, std::string name) {
  rocksdb::ColumnFamilyOptions cf;
  cf.compaction_style = rocksdb::kCompactionStyleFIFO;
  cf.compaction_options_fifo.max_table_files_size = options.max_disk_bytes;
  cf.compaction_options_fifo.allow_compaction = false;
  if (options.max_ttl.count() > 0) cf.ttl = static_cast<uint64_t>(options.max_ttl.count());
  cf.write_buffer_size = options.write_buffer_size;
  // Most lookups of a busy cache are misses of keys never stored: a bloom filter over
  // the memtables' keys answers them without searching the skip list.
  cf.memtable_prefix_bloom_size_ratio = 0.02;
  cf.memtable_whole_key_filtering = true;
  // FIFO keeps every file in L0, so a miss asks every file's bloom filter: a full 1 GiB
  // tier is ~40 files of a 32 MiB memtable. At 20 bits per key (~0.01% false positives,
  // 2.5 bytes per entry) a miss almost never needs a block read, so it is answered on
  // the I/O thread (lookup_now) instead of the read pool; at 10 bits, ~150 files of
  // 8 MiB made one in two misses read a block.
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(20));
  table.checksum = rocksdb::kXXH3;  // Debian's RocksDB computes CRC32C in software
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return ColumnFamilySpec{std::move(name), std::move(cf)};
}

struct ExactCache::Impl {
  std::shared_ptr<Store> store;
  rocksdb::ColumnFamilyHandle* cf = nullptr;
  ExactCacheOptions options;
  std::shared_ptr<const Clock> clock;
  size_t shard_capacity = 0;
  std::vector<Shard> shards;

  // Bumped by every erase; a disk read that started before an erase must not
  // promote what it read into memory afterwards.
  std::atomic<uint64_t> generation{0};

  // Batched writer.
  std::mutex wmu;
  std::condition_variable wcv;        // work arrived / stop
  std::condition_variable flushed_cv; // queue drained and no batch in flight
  std::deque<WriteOp> wqueue;
  size_t pending_bytes = 0;
  bool writing = false;
  bool wstop = false;
  std::thread writer;

  std::unique_ptr<BlockingPool> readers;

  struct Counters {
    std::atomic<uint64_t> memory_hits{0}, disk_hits{0}, misses{0}, expired{0}, corrupt{0},
        read_errors{0}, write_errors{0}, stores{0}, dropped_writes{0}, memory_evictions{0}, disk_reads{0};
  } counters;

  Shard& shard_for(const CacheKey& k) { return shards[k.hi % shards.size()]; }

  // Requires s.mu held.
  void remove_locked(Shard& s, Shard::Lru::iterator it) {
    s.bytes -= it->second->byte_size();
    s.index.erase(it->first);
    s.lru.erase(it);
  }

  // Requires s.mu held. Inserts or replaces; evicts from the cold end to fit.
  void insert_locked(Shard& s, const CacheKey& k, std::shared_ptr<const CachedResponse> e) {
    if (auto it = s.index.find(k); it != s.index.end()) remove_locked(s, it->second);
    const size_t size = e->byte_size();
    if (size > shard_capacity) return;
    while (s.bytes + size > shard_capacity && !s.lru.empty()) {
      remove_locked(s, std::prev(s.lru.end()));
      counters.memory_evictions.fetch_add(1, std::memory_order_relaxed);
    }
    s.lru.emplace_front(k, std::move(e));
    s.index.emplace(k, s.lru.begin());
    s.bytes += size;
  }

  // Requires the key's shard lock held (orders this op against store() of the same
  // key). Returns false when the op was dropped for back-pressure.
  bool enqueue_locked(WriteOp op) {
    {
      std::lock_guard lk(wmu);
      const size_t size = op.entry ? op.entry->byte_size() : op.key.size();
      if (op.entry && pending_bytes + size > options.max_pending_write_bytes) return false;
      pending_bytes += size;
      wqueue.push_back(std::move(op));
      // The writer sleeps only on an empty queue; while it lingers over a short batch it
      // needs a wake-up only once the batch is full.
      if (wqueue.size() != 1 && wqueue.size() != options.write_batch_max) return true;
    }
    wcv.notify_one();
    return true;
  }

  // Lazily deletes a dead (expired/corrupt) disk value unless a live entry for the
  // key was stored meanwhile.
  void delete_dead(const CacheKey& k) {
    Shard& s = shard_for(k);
    std::lock_guard lk(s.mu);
    if (auto it = s.index.find(k); it != s.index.end() && !it->second->second->expired_at(clock->now_ms()))
      return;
    enqueue_locked(WriteOp{k.to_bytes(), nullptr});
  }

  void writer_loop() {
    std::unique_lock lk(wmu);
    for (;;) {
      wcv.wait(lk, [&] { return wstop || !wqueue.empty(); });
      if (wqueue.empty()) return;  // stopping, everything written
      // Under load, one batch per linger instead of a wake-up and a write per store.
      if (options.write_linger.count() > 0)
        wcv.wait_for(lk, options.write_linger,
                     [&] { return wstop || wqueue.size() >= options.write_batch_max; });
      std::vector<WriteOp> batch;
      while (!wqueue.empty() && batch.size() < options.write_batch_max) {
        batch.push_back(std::move(wqueue.front()));
        wqueue.pop_front();
      }
      writing = true;
      lk.unlock();
      rocksdb::WriteBatch wb;
      size_t done_bytes = 0;
      for (const auto& op : batch) {
        if (op.entry) {
          (void)wb.Put(cf, op.key, encode_entry(*op.entry));
          done_bytes += op.entry->byte_size();
        } else {
          (void)wb.Delete(cf, op.key);
          done_bytes += op.key.size();
        }
      }
      if (!store->db()->Write(rocksdb::WriteOptions(), &wb).ok())
        counters.write_errors.fetch_add(1, std::memory_order_relaxed);
      batch.clear();  // drop entry references before signalling
      lk.lock();
      pending_bytes -= done_bytes;
      writing = false;
      if (wqueue.empty()) flushed_cv.notify_all();
    }
  }

  void flush() {
    std::unique_lock lk(wmu);
    flushed_cv.wait(lk, [&] { return wqueue.empty() && !writing; });
  }

  // The key's disk value read with `ro`, decoded and promoted into memory; nullopt when
  // RocksDB answered Incomplete (a non-blocking read that would need a disk read).
  std::optional<LookupResult> read_disk(const CacheKey& key, uint64_t gen, const rocksdb::ReadOptions& ro) {
    rocksdb::PinnableSlice value;
    const std::string k = key.to_bytes();
    auto st = store->db()->Get(ro, cf, k, &value);
    if (st.IsIncomplete() && ro.read_tier == rocksdb::kBlockCacheTier) return std::nullopt;
    if (!st.ok()) {
      if (!st.IsNotFound()) counters.read_errors.fetch_add(1, std::memory_order_relaxed);
      counters.misses.fetch_add(1, std::memory_order_relaxed);
      return LookupResult{};
    }
    auto decoded = decode_entry(std::string_view(value.data(), value.size()));
    if (!decoded) {
      counters.corrupt.fetch_add(1, std::memory_order_relaxed);
      counters.misses.fetch_add(1, std::memory_order_relaxed);
      delete_dead(key);
      return LookupResult{};
    }
    if (decoded->expired_at(clock->now_ms())) {
      counters.expired.fetch_add(1, std::memory_order_relaxed);
      counters.misses.fetch_add(1, std::memory_order_relaxed);
      delete_dead(key);
      return LookupResult{};
    }
    auto entry = std::make_shared<const CachedResponse>(std::move(decoded).value());
    {
      Shard& s = shard_for(key);
      std::lock_guard lk(s.mu);
      // Promote unless an erase ran since the read began or a fresher store landed.
      if (generation.load(std::memory_order_acquire) == gen && !s.index.contains(key))
        insert_locked(s, key, entry);
    }
    counters.disk_hits.fetch_add(1, std::memory_order_relaxed);
    return LookupResult{std::move(entry), CacheSource::kDisk};
  }

  template <class Pred>
  void erase_memory_if(Pred pred) {
    generation.fetch_add(1, std::memory_order_acq_rel);
    for (auto& s : shards) {
      std::lock_guard lk(s.mu);
      for (auto it = s.lru.begin(); it != s.lru.end();) {
        auto next = std::next(it);
        if (pred(*it->second)) remove_locked(s, it);
        it = next;
      }
    }
  }

  template <class Pred>
  void purge_queue_if(Pred pred) {
    std::lock_guard lk(wmu);
    for (auto it = wqueue.begin(); it != wqueue.end();) {
      if (it->entry && pred(*it->entry)) {
        pending_bytes -= it->entry->byte_size();
        it = wqueue.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Memory, queued writes, then disk (after the in-flight batch has landed), then
  // memory again for reads that raced with the disk scan.
  template <class Pred>
  Result<size_t> erase_if(Pred pred) {
    erase_memory_if(pred);
    purge_queue_if(pred);
    flush();
    size_t removed = 0;
    std::unique_ptr<rocksdb::Iterator> it(store->db()->NewIterator(rocksdb::ReadOptions(), cf));
    rocksdb::WriteBatch wb;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto e = decode_entry(std::string_view(it->value().data(), it->value().size()));
      if (!e || pred(*e)) {  // corrupt values go too
        (void)wb.Delete(cf, it->key());
        ++removed;
      }
    }
    if (!it->status().ok()) return rocks_error(it->status(), "scan cache");
    auto st = store->db()->Write(rocksdb::WriteOptions(), &wb);
    if (!st.ok()) return rocks_error(st, "erase cache entries");
    erase_memory_if(pred);
    return removed;
  }
};

ExactCache::ExactCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<ExactCache>> ExactCache::open(std::shared_ptr<Store> store,
                                                     ExactCacheOptions options) {
  if (!store) return make_error(ErrorKind::kInternal, "exact cache: no store");
  auto* cf = store->cf(options.column_family);
  if (!cf)
    return make_error(ErrorKind::kInternal,
                      "exact cache: column family '" + options.column_family + "' not opened");
  auto impl = std::make_unique<Impl>();
  impl->store = std::move(store);
  impl->cf = cf;
  if (options.shards == 0) options.shards = 1;
  if (options.write_batch_max == 0) options.write_batch_max = 1;
  impl->clock = options.clock ? options.clock : std::make_shared<SystemClock>();
  impl->shard_capacity = options.memory_bytes / options.shards;
  impl->shards = std::vector<Shard>(options.shards);
  impl->options = std::move(options);
  impl->writer = std::thread([p = impl.get()] { p->writer_loop(); });
  impl->readers = std::make_unique<BlockingPool>(impl->options.read_threads);
  return std::unique_ptr<ExactCache>(new ExactCache(std::move(impl)));
}

ExactCache::~ExactCache() {
  impl_->readers.reset();  // runs pending lookups; they may queue lazy deletes
  {
    std::lock_guard lk(impl_->wmu);
    impl_->wstop = true;
  }
  impl_->wcv.notify_all();
  impl_->writer.join();
}

std::shared_ptr<const CachedResponse> ExactCache::lookup_memory(const CacheKey& key) {
  Shard& s = impl_->shard_for(key);
  std::unique_lock lk(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return nullptr;
  auto node = it->second;
  if (node->second->expired_at(impl_->clock->now_ms())) {
    impl_->remove_locked(s, node);
    impl_->counters.expired.fetch_add(1, std::memory_order_relaxed);
    impl_->enqueue_locked(WriteOp{key.to_bytes(), nullptr});
    return nullptr;
  }
  s.lru.splice(s.lru.begin(), s.lru, node);
  impl_->counters.memory_hits.fetch_add(1, std::memory_order_relaxed);
  return node->second;
}

std::optional<LookupResult> ExactCache::lookup_now(const CacheKey& key) {
  if (auto e = lookup_memory(key)) return LookupResult{std::move(e), CacheSource::kMemory};
  rocksdb::ReadOptions ro;
  ro.read_tier = rocksdb::kBlockCacheTier;
  return impl_->read_disk(key, impl_->generation.load(std::memory_order_acquire), ro);
}

void ExactCache::lookup(const CacheKey& key, LookupCallback cb) {
  if (auto r = lookup_now(key)) {
    cb(std::move(*r));
    return;
  }
  impl_->counters.disk_reads.fetch_add(1, std::memory_order_relaxed);
  const uint64_t gen = impl_->generation.load(std::memory_order_acquire);
  Impl* impl = impl_.get();
  auto shared_cb = std::make_shared<LookupCallback>(std::move(cb));
  auto read = [impl, key, gen, shared_cb] {
    auto r = impl->read_disk(key, gen, rocksdb::ReadOptions());
    (*shared_cb)(r ? std::move(*r) : LookupResult{});
  };
  if (!impl->readers->post(std::move(read))) {
    // The pool is stopping (a callback looked up again during destruction): a miss.
    impl->counters.misses.fetch_add(1, std::memory_order_relaxed);
    (*shared_cb)(LookupResult{});
  }
}

std::shared_ptr<const CachedResponse> ExactCache::store(const CacheKey& key, CachedResponse entry,
                                                        std::chrono::milliseconds ttl) {
  const int64_t now = impl_->clock->now_ms();
  entry.stored_at_ms = now;
  entry.expires_at_ms = ttl.count() > 0 ? now + ttl.count() : 0;
  auto shared = std::make_shared<const CachedResponse>(std::move(entry));
  impl_->counters.stores.fetch_add(1, std::memory_order_relaxed);
  Shard& s = impl_->shard_for(key);
  std::lock_guard lk(s.mu);
  impl_->insert_locked(s, key, shared);
  if (!impl_->enqueue_locked(WriteOp{key.to_bytes(), shared}))
    impl_->counters.dropped_writes.fetch_add(1, std::memory_order_relaxed);
  return shared;
}

void ExactCache::erase(const CacheKey& key) {
  Shard& s = impl_->shard_for(key);
  {
    std::lock_guard lk(s.mu);
    impl_->generation.fetch_add(1, std::memory_order_acq_rel);
    if (auto it = s.index.find(key); it != s.index.end()) impl_->remove_locked(s, it->second);
    impl_->enqueue_locked(WriteOp{key.to_bytes(), nullptr});
  }
  impl_->flush();
}

Result<void> ExactCache::erase_all() {
  auto all = [](const CachedResponse&) { return true; };
  impl_->erase_memory_if(all);
  impl_->purge_queue_if(all);
  impl_->flush();
  auto st = impl_->store->db()->DeleteRange(rocksdb::WriteOptions(), impl_->cf, kBeginKey, kEndKey);
  if (!st.ok()) return rocks_error(st, "erase all cache entries");
  impl_->erase_memory_if(all);
  return {};
}

Result<size_t> ExactCache::erase_by_route(std::string_view route) {
  return impl_->erase_if([route](const CachedResponse& e) { return e.route == route; });
}

Result<size_t> ExactCache::erase_by_tenant(std::string_view tenant) {
  return impl_->erase_if([tenant](const CachedResponse& e) { return e.tenant == tenant; });
}

void ExactCache::flush() {
  impl_->readers->drain();  // lookups in flight may still queue lazy deletes
  impl_->flush();
}

CacheStats ExactCache::stats() const {
  CacheStats s;
  const auto& c = impl_->counters;
  s.memory_hits = c.memory_hits.load();
  s.disk_hits = c.disk_hits.load();
  s.misses = c.misses.load();
  s.expired = c.expired.load();
  s.corrupt = c.corrupt.load();
  s.read_errors = c.read_errors.load();
  s.write_errors = c.write_errors.load();
  s.stores = c.stores.load();
  s.dropped_writes = c.dropped_writes.load();
  s.memory_evictions = c.memory_evictions.load();
  s.disk_reads = c.disk_reads.load();
  for (auto& sh : impl_->shards) {
    std::lock_guard lk(sh.mu);
    s.memory_bytes += sh.bytes;
    s.memory_entries += sh.lru.size();
  }
  return s;
}

}  // namespace frugal::cache
