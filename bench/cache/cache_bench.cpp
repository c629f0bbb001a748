// cache_bench: exact-cache lookup throughput, memory hits and RocksDB hits.
// Short and bounded (~2 s). Absolute numbers drift on a shared box, so each result is
// also printed as a ratio to a reference measured in the same run: a mutex-guarded
// std::unordered_map lookup (the floor any in-memory cache pays).
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cache/exact_cache.h"

using namespace frugal::cache;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr int kEntries = 20000;
constexpr auto kRun = std::chrono::milliseconds(400);
constexpr int kThreads = 2;

CacheKey key(int i) { return hash128("bench-" + std::to_string(i)); }

CachedResponse entry(int i) {
  CachedResponse e;
  e.completion_json = "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + std::string(600, 'p') + "\"}";
  e.model = "m";
  e.route = "r";
  return e;
}

// Runs `op(thread, iteration)` on `threads` threads for kRun; returns ops/s.
template <class Op>
double measure(int threads, Op op) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> total{0};
  std::vector<std::thread> ts;
  const auto t0 = SteadyClock::now();
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 64; ++k) op(t, n++);
      }
      total.fetch_add(n);
    });
  }
  std::this_thread::sleep_for(kRun);  // benchmark duration, not synchronisation
  stop = true;
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  return static_cast<double>(total.load()) / secs;
}

}  // namespace

int main() {
  std::vector<CacheKey> keys;
  for (int i = 0; i < kEntries; ++i) keys.push_back(key(i));

  // Reference: a mutex-guarded hash map of shared_ptrs.
  std::mutex ref_mu;
  std::unordered_map<CacheKey, std::shared_ptr<const CachedResponse>, CacheKeyHasher> ref;
  for (int i = 0; i < kEntries; ++i) ref[keys[i]] = std::make_shared<const CachedResponse>(entry(i));
  const double ref_ops = measure(1, [&](int, uint64_t n) {
    std::lock_guard lk(ref_mu);
    auto it = ref.find(keys[n % kEntries]);
    if (it == ref.end()) std::abort();
  });

  std::string tmpl = (std::filesystem::temp_directory_path() / "frugal-cache-bench-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) return 1;
  double mem1 = 0, mem2 = 0, disk2 = 0;
  {
    auto store = Store::open(tmpl, {cache_column_family_spec()});
    if (!store) return 1;
    ExactCacheOptions mem_opts;
    mem_opts.memory_bytes = 256u << 20;
    auto mem = ExactCache::open(*store, mem_opts);
    if (!mem) return 1;
    for (int i = 0; i < kEntries; ++i) (*mem)->store(keys[i], entry(i), std::chrono::hours(1));
    auto hit = [&](int, uint64_t n) {
      (*mem)->lookup(keys[n % kEntries], [](LookupResult r) {
        if (r.source != CacheSource::kMemory) std::abort();
      });
    };
    mem1 = measure(1, hit);
    mem2 = measure(kThreads, hit);
    (*mem)->flush();
    mem->reset();
    if (!(*store)->flush().ok()) return 1;

    // Disk hits: no memory tier, so every lookup is a RocksDB Get on the read pool.
    ExactCacheOptions disk_opts;
    disk_opts.memory_bytes = 0;
    disk_opts.read_threads = kThreads;
    auto disk = ExactCache::open(*store, disk_opts);
    if (!disk) return 1;
    constexpr int kWindow = 64;  // lookups in flight per submitting thread
    std::mutex mu;
    std::condition_variable cv;
    std::vector<int> in_flight(kThreads, 0);
    disk2 = measure(kThreads, [&](int t, uint64_t n) {
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return in_flight[t] < kWindow; });
        ++in_flight[t];
      }
      (*disk)->lookup(keys[(n * 7919 + static_cast<uint64_t>(t)) % kEntries], [&, t](LookupResult r) {
        if (r.source != CacheSource::kDisk) std::abort();
        std::lock_guard lk(mu);
        --in_flight[t];
        cv.notify_all();
      });
    });
    (*disk)->flush();
  }
  std::filesystem::remove_all(tmpl);

  std::printf("reference (mutex + unordered_map, 1 thread): %12.0f lookups/s\n", ref_ops);
  std::printf("memory hits, 1 thread:                        %12.0f lookups/s  (%.2fx reference)\n", mem1, mem1 / ref_ops);
  std::printf("memory hits, %d threads:                       %12.0f lookups/s  (%.2fx reference)\n", kThreads, mem2, mem2 / ref_ops);
  std::printf("RocksDB hits, %d submitters / %d readers:       %12.0f lookups/s  (%.3fx reference)\n", kThreads, kThreads, disk2, disk2 / ref_ops);
  return 0;
}
