#pragma once
// One T per thread that writes, for state updated on every request and read rarely
// (metrics, access-log buffers): a writer locks only its own shard, which no other
// thread locks except a reader that visits all of them (a scrape, a flush). So the
// request path takes an uncontended lock instead of a process-wide one.
//
// Threading: local() from any thread; for_each() from any thread. Shards live as long
// as the ThreadShards object; a thread's shard outlives the thread.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace frugal::gateway {

template <typename T>
class ThreadShards {
 public:
  struct Shard {
    std::mutex mu;
    T data;
  };

  ThreadShards() : id_(next_id().fetch_add(1, std::memory_order_relaxed)) {}
  ThreadShards(const ThreadShards&) = delete;
  ThreadShards& operator=(const ThreadShards&) = delete;

  // The calling thread's shard (created on its first call); lock its `mu` to touch `data`.
  Shard& local() {
    // Ids, not addresses: a later object at a freed address must not find a dead shard.
    thread_local std::vector<std::pair<uint64_t, Shard*>> mine;
    for (const auto& [id, s] : mine)
      if (id == id_) return *s;
    std::lock_guard lock(mu_);
    shards_.push_back(std::make_unique<Shard>());
    mine.emplace_back(id_, shards_.back().get());
    return *shards_.back();
  }

  // Calls f(data) for every shard, each under its lock.
  template <typename F>
  void for_each(F&& f) {
    std::lock_guard lock(mu_);
    for (auto& s : shards_) {
      std::lock_guard shard_lock(s->mu);
      f(s->data);
    }
  }

 private:
  static std::atomic<uint64_t>& next_id() {
    static std::atomic<uint64_t> n{1};
    return n;
  }
  const uint64_t id_;
  std::mutex mu_;  // guards shards_ (taken once per thread, and by for_each)
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace frugal::gateway
