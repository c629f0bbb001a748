#include "cache/exact_cache.h"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "test_util.h"

using namespace frugal;
using namespace frugal::cache;
using namespace std::chrono_literals;
using frugal::cache::test::TempDir;

namespace {

CacheKey key(int i) { return hash128("key-" + std::to_string(i)); }

CachedResponse entry(int i, std::string route = "r1", std::string tenant = "t1", size_t body_bytes = 100) {
  CachedResponse e;
  e.completion_json = "{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(body_bytes, 'x') + "\"}";
  e.model = "m";
  e.route = std::move(route);
  e.tenant = std::move(tenant);
  e.usage.input_tokens = i;
  return e;
}

// Blocking adapter over the callback API (tests only).
LookupResult lookup_sync(ExactCache& cache, const CacheKey& k) {
  std::promise<LookupResult> p;
  auto f = p.get_future();
  cache.lookup(k, [&p](LookupResult r) { p.set_value(std::move(r)); });
  return f.get();
}

struct Fixture {
  TempDir dir;
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  std::shared_ptr<Store> store;
  std::unique_ptr<ExactCache> cache;

  explicit Fixture(size_t memory_bytes = 1 << 20) { open(memory_bytes); }
  void open(size_t memory_bytes = 1 << 20) {
    cache.reset();
    store.reset();
    auto s = Store::open(dir.path(), {cache_column_family_spec()});
    REQUIRE(s.ok());
    store = *s;
    ExactCacheOptions o;
    o.memory_bytes = memory_bytes;
    o.shards = 4;
    o.clock = clock;
    auto c = ExactCache::open(store, o);
    REQUIRE(c.ok());
    cache = std::move(*c);
  }
};

}  // namespace

TEST_CASE("a stored entry is a synchronous memory hit") {
  Fixture f;
  f.cache->store(key(1), entry(1), 60s);
  bool called = false;
  f.cache->lookup(key(1), [&](LookupResult r) {
    called = true;
    CHECK(r.source == CacheSource::kMemory);
    REQUIRE(r.hit());
    CHECK(r.entry->usage.input_tokens == 1);
    CHECK(r.entry->expires_at_ms == f.clock->now_ms() + 60'000);
  });
  CHECK(called);  // inline, before lookup() returned
  CHECK(f.cache->stats().memory_hits == 1);
}

TEST_CASE("a miss that RocksDB answers without disk I/O runs inline") {
  Fixture f;
  f.cache->store(key(1), entry(1), 60s);
  f.cache->flush();  // key(1) in the memtable; key(9) never stored
  bool called = false;
  f.cache->lookup(key(9), [&](LookupResult r) {
    called = true;
    CHECK_FALSE(r.hit());
    CHECK(r.source == CacheSource::kMiss);
  });
  CHECK(called);
  auto now = f.cache->lookup_now(key(9));
  REQUIRE(now.has_value());
  CHECK_FALSE(now->hit());
  CHECK(f.cache->stats().misses == 2);
  CHECK(f.cache->stats().disk_reads == 0);
}

TEST_CASE("a lookup that needs a disk read runs on the read pool, not on the caller's thread") {
  Fixture f;
  f.cache->store(key(1), entry(1), 1h);
  f.cache->flush();
  REQUIRE(f.store->db()->Flush(rocksdb::FlushOptions(), f.store->cf("cache")).ok());  // into an SST file
  f.open();  // empty memory tier and block cache: the value's block is on disk only
  CHECK_FALSE(f.cache->lookup_now(key(1)).has_value());
  std::promise<std::thread::id> p;
  f.cache->lookup(key(1), [&](LookupResult r) {
    CHECK(r.hit());
    CHECK(r.source == CacheSource::kDisk);
    p.set_value(std::this_thread::get_id());
  });
  CHECK(p.get_future().get() != std::this_thread::get_id());
  CHECK(f.cache->stats().disk_reads == 1);
  auto again = f.cache->lookup_now(key(1));  // promoted into memory
  REQUIRE(again.has_value());
  CHECK(again->source == CacheSource::kMemory);
}

TEST_CASE("queued writes reach RocksDB within the write linger without a flush") {
  Fixture f;
  f.cache->store(key(1), entry(1), 1h);
  std::string v;
  rocksdb::Status st;
  for (int i = 0; i < 2000; ++i) {  // bounded: 2 s
    st = f.store->db()->Get(rocksdb::ReadOptions(), f.store->cf("cache"), key(1).to_bytes(), &v);
    if (st.ok()) break;
    std::this_thread::sleep_for(1ms);
  }
  CHECK(st.ok());
}

TEST_CASE("entries survive a restart and are served from RocksDB") {
  Fixture f;
  for (int i = 0; i < 50; ++i) f.cache->store(key(i), entry(i), 1h);
  f.cache->store(key(99), entry(99), 0ms);  // never expires
  f.open();                                 // destroys the cache (flushes), reopens the store
  for (int i = 0; i < 50; ++i) {
    auto r = lookup_sync(*f.cache, key(i));
    REQUIRE(r.hit());
    CHECK(r.source == CacheSource::kDisk);
    CHECK(r.entry->usage.input_tokens == i);
    CHECK(r.entry->completion_json == entry(i).completion_json);
  }
  CHECK(lookup_sync(*f.cache, key(99)).hit());
  // A disk hit is promoted: the next lookup is a memory hit.
  CHECK(lookup_sync(*f.cache, key(3)).source == CacheSource::kMemory);
  CHECK(f.cache->stats().disk_hits == 51);
}

TEST_CASE("expired entries are never served and are removed from both tiers") {
  Fixture f;
  f.cache->store(key(1), entry(1), 10s);
  f.cache->store(key(2), entry(2), 100s);
  f.cache->flush();
  f.clock->advance(10s);
  CHECK_FALSE(lookup_sync(*f.cache, key(1)).hit());
  CHECK(lookup_sync(*f.cache, key(2)).hit());
  f.cache->flush();
  // Gone from disk too: a reopened cache at an earlier time does not find it.
  f.clock->advance(-10s);
  f.open();
  CHECK_FALSE(lookup_sync(*f.cache, key(1)).hit());
  CHECK(lookup_sync(*f.cache, key(2)).hit());

  // Expiry found on the disk path (not in memory after a restart).
  f.clock->advance(200s);
  f.open();
  CHECK_FALSE(lookup_sync(*f.cache, key(2)).hit());
  CHECK(f.cache->stats().expired == 1);
  f.cache->flush();
  std::string v;
  auto st = f.store->db()->Get(rocksdb::ReadOptions(), f.store->cf("cache"), key(2).to_bytes(), &v);
  CHECK(st.IsNotFound());
}

TEST_CASE("the memory tier is bounded in bytes and evicts least recently used first") {
  const size_t one = entry(0).byte_size();
  Fixture f(4 * (5 * one + one / 2));  // 4 shards, 5 entries each
  std::vector<CacheKey> in_shard;      // keys that land in one shard
  for (int i = 0; in_shard.size() < 8; ++i)
    if (key(i).hi % 4 == 0) in_shard.push_back(key(i));
  for (size_t i = 0; i < 5; ++i) f.cache->store(in_shard[i], entry(static_cast<int>(i)), 1h);
  CHECK(f.cache->lookup_memory(in_shard[0]) != nullptr);  // touch: 0 becomes most recent
  f.cache->store(in_shard[5], entry(5), 1h);              // evicts 1, the LRU
  CHECK(f.cache->lookup_memory(in_shard[0]) != nullptr);
  CHECK(f.cache->lookup_memory(in_shard[1]) == nullptr);
  for (size_t i = 2; i <= 5; ++i) CHECK(f.cache->lookup_memory(in_shard[i]) != nullptr);
  auto s = f.cache->stats();
  CHECK(s.memory_entries == 5);
  CHECK(s.memory_bytes <= 5 * one + one / 2);
  CHECK(s.memory_evictions == 1);
  // Evicted from memory is not lost: the disk tier still has it.
  f.cache->flush();
  auto r = lookup_sync(*f.cache, in_shard[1]);
  CHECK(r.source == CacheSource::kDisk);
  // An entry larger than a shard's budget bypasses memory but is still stored.
  f.cache->store(key(1000), entry(1000, "r1", "t1", 10 * one), 1h);
  CHECK(f.cache->lookup_memory(key(1000)) == nullptr);
  f.cache->flush();
  CHECK(lookup_sync(*f.cache, key(1000)).hit());
}

TEST_CASE("erase variants remove entries from memory, queue and disk, also after restart") {
  Fixture f;
  for (int i = 0; i < 30; ++i)
    f.cache->store(key(i), entry(i, i % 3 == 0 ? "r0" : "r1", i % 2 == 0 ? "even" : "odd"), 1h);
  f.cache->flush();
  f.open();  // the secondary data (route, tenant) lives in the values

  auto by_route = f.cache->erase_by_route("r0");
  REQUIRE(by_route.ok());
  CHECK(*by_route == 10);
  for (int i = 0; i < 30; i += 3) CHECK_FALSE(lookup_sync(*f.cache, key(i)).hit());
  CHECK(lookup_sync(*f.cache, key(1)).hit());

  auto by_tenant = f.cache->erase_by_tenant("even");
  REQUIRE(by_tenant.ok());
  CHECK(*by_tenant == 10);  // 15 even keys, 5 of them already gone with r0
  for (int i = 0; i < 30; ++i) CHECK(lookup_sync(*f.cache, key(i)).hit() == (i % 3 != 0 && i % 2 == 1));

  f.cache->erase(key(1));
  CHECK_FALSE(lookup_sync(*f.cache, key(1)).hit());

  f.cache->store(key(100), entry(100), 1h);  // still queued when erase_all runs
  REQUIRE(f.cache->erase_all().ok());
  for (int i = 0; i < 30; ++i) CHECK_FALSE(lookup_sync(*f.cache, key(i)).hit());
  CHECK_FALSE(lookup_sync(*f.cache, key(100)).hit());
  f.open();
  CHECK_FALSE(lookup_sync(*f.cache, key(5)).hit());
  CHECK_FALSE(lookup_sync(*f.cache, key(100)).hit());
}

TEST_CASE("a corrupted value on disk is a miss and is deleted") {
  Fixture f;
  f.cache->store(key(1), entry(1), 1h);
  f.cache->flush();
  std::string bytes = encode_entry(*f.cache->lookup_memory(key(1)));
  bytes[bytes.size() / 2] ^= 0x20;
  REQUIRE(f.store->db()->Put(rocksdb::WriteOptions(), f.store->cf("cache"), key(1).to_bytes(), bytes).ok());
  f.open();
  CHECK_FALSE(lookup_sync(*f.cache, key(1)).hit());
  CHECK(f.cache->stats().corrupt == 1);
  f.cache->flush();
  std::string v;
  CHECK(f.store->db()->Get(rocksdb::ReadOptions(), f.store->cf("cache"), key(1).to_bytes(), &v).IsNotFound());
}

TEST_CASE("concurrent lookups and stores from several threads are safe") {
  Fixture f(64 * 1024);  // small: forces evictions and disk reads
  std::atomic<int> hits{0}, done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const int k = (i * 7 + t) % 50;
        if (i % 3 == 0) f.cache->store(key(k), entry(k), 1h);
        f.cache->lookup(key(k), [&, k](LookupResult r) {
          if (r.hit()) {
            CHECK(r.entry->usage.input_tokens == k);
            hits.fetch_add(1);
          }
          done.fetch_add(1);
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  f.cache->flush();  // drains the read pool too
  CHECK(done.load() == 800);
  CHECK(hits.load() > 0);
}

TEST_CASE("the disk tier is bounded in bytes by FIFO compaction") {
  TempDir dir;
  CacheDiskOptions disk;
  disk.max_disk_bytes = 256 * 1024;
  disk.write_buffer_size = 64 * 1024;
  auto s = Store::open(dir.path(), {cache_column_family_spec(disk)});
  REQUIRE(s.ok());
  auto store = *s;
  ExactCacheOptions o;
  o.memory_bytes = 0;  // disk only
  auto c = ExactCache::open(store, o);
  REQUIRE(c.ok());
  auto& cache = **c;
  uint64_t lcg = 12345;  // incompressible padding, so SST sizes reflect the data
  auto noise = [&lcg](size_t n) {
    std::string s(n, ' ');
    for (auto& ch : s) {
      lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
      ch = static_cast<char>('a' + (lcg >> 59));
    }
    return s;
  };
  for (int round = 0; round < 12; ++round) {
    for (int i = 0; i < 40; ++i) {
      CachedResponse e = entry(i);
      e.completion_json = noise(2000);
      cache.store(key(round * 100 + i), std::move(e), 1h);
    }
    cache.flush();
    REQUIRE(store->flush().ok());  // one SST per round; FIFO drops the oldest beyond the bound
  }
  REQUIRE(store->db()->CompactRange(rocksdb::CompactRangeOptions(), store->cf("cache"), nullptr, nullptr).ok());
  uint64_t sst = 0;
  REQUIRE(store->db()->GetIntProperty(store->cf("cache"), "rocksdb.total-sst-files-size", &sst));
  CHECK(sst <= disk.max_disk_bytes + 128 * 1024);  // bound + at most one file's slack
  CHECK(sst > 0);
  CHECK_FALSE(lookup_sync(cache, key(0)).hit());        // oldest round dropped
  CHECK(lookup_sync(cache, key(11 * 100 + 1)).hit());   // newest kept
}

TEST_CASE("under write back-pressure store() keeps the memory tier and skips the disk write") {
  TempDir dir;
  auto s = Store::open(dir.path(), {cache_column_family_spec()});
  REQUIRE(s.ok());
  ExactCacheOptions o;
  o.max_pending_write_bytes = 1;  // smaller than any entry: every disk write is skipped
  {
    auto c = ExactCache::open(*s, o);
    REQUIRE(c.ok());
    (*c)->store(key(1), entry(1), 1h);
    CHECK((*c)->lookup_memory(key(1)) != nullptr);
    CHECK((*c)->stats().dropped_writes == 1);
  }
  auto c = ExactCache::open(*s);
  REQUIRE(c.ok());
  CHECK_FALSE(lookup_sync(**c, key(1)).hit());
}
