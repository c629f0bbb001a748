#pragma once
// Prefix-affinity replica choice: consistent hashing with bounded loads (Mirrokni,
// Thorup, Zadimoghaddam, "Consistent Hashing with Bounded Loads", 2018).
//
// Each replica owns `virtual_nodes` points on a 64-bit ring (hashed from its name, so
// points do not depend on list order). pick(h) walks clockwise from h's position to
// the first replica whose current load is below
//     capacity = ceil((1 + epsilon) * (total_load + 1) / live_replicas),
// so the same prefix goes to the same replica (its KV cache is warm) unless that
// replica is over its fair share, and no replica ever exceeds the bound.
//
// Threads: all methods are thread-safe (one mutex). Indices are stable: a removed
// replica keeps its index (it is just never picked) and add_replica appends.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cache/hash.h"

namespace frugal::router {

struct ReplicaPickerOptions {
  double epsilon = 0.25;     // load slack over the average; smaller = more balance, less affinity
  size_t virtual_nodes = 64; // ring points per replica
};

class ReplicaPicker {
 public:
  explicit ReplicaPicker(std::vector<std::string> replica_names, ReplicaPickerOptions options = {});

  // The replica for `prefix`, honouring the load bound (nullopt: no live replica).
  // Does not change loads: pair with acquire/release, or use pick_and_acquire.
  std::optional<size_t> pick(const cache::Hash128& prefix) const;
  std::optional<size_t> pick_and_acquire(const cache::Hash128& prefix);
  void acquire(size_t replica);
  void release(size_t replica);  // a release without a matching acquire is ignored

  size_t add_replica(std::string name);
  void remove_replica(size_t replica);  // its in-flight load is forgotten

  size_t capacity() const;  // the current per-replica bound for the next request
  int64_t load(size_t replica) const;
  size_t live_replicas() const;

 private:
  struct Point {
    uint64_t pos;
    size_t replica;
  };
  void rebuild_locked();
  std::optional<size_t> pick_locked(const cache::Hash128& prefix) const;
  size_t capacity_locked() const;

  mutable std::mutex mu_;
  ReplicaPickerOptions options_;
  std::vector<std::string> names_;
  std::vector<bool> live_;
  std::vector<int64_t> loads_;
  int64_t total_load_ = 0;
  size_t live_count_ = 0;
  std::vector<Point> ring_;  // sorted by pos, live replicas only
};

}  // namespace frugal::router
