#include "router/replica_picker.h"

#include <algorithm>
#include <cmath>

namespace frugal::router {

namespace {
constexpr uint64_t kRingSeed = 0x72696e675f763120ULL;  // "ring_v1 "
}

ReplicaPicker::ReplicaPicker(std::vector<std::string> names, ReplicaPickerOptions options)
    : options_(options), names_(std::move(names)) {
  if (options_.virtual_nodes == 0) options_.virtual_nodes = 1;
  if (options_.epsilon < 0) options_.epsilon = 0;
  live_.assign(names_.size(), true);
  loads_.assign(names_.size(), 0);
  live_count_ = names_.size();
  rebuild_locked();
}

void ReplicaPicker::rebuild_locked() {
  ring_.clear();
  for (size_t r = 0; r < names_.size(); ++r) {
    if (!live_[r]) continue;
    for (size_t v = 0; v < options_.virtual_nodes; ++v) {
      cache::HashInput in;
      in.str(names_[r]).u64(v);
      ring_.push_back(Point{in.digest(kRingSeed).hi, r});
    }
  }
  std::sort(ring_.begin(), ring_.end(), [](const Point& a, const Point& b) {
    return a.pos != b.pos ? a.pos < b.pos : a.replica < b.replica;
  });
}

size_t ReplicaPicker::capacity_locked() const {
  if (live_count_ == 0) return 0;
  const double avg = static_cast<double>(total_load_ + 1) / static_cast<double>(live_count_);
  return static_cast<size_t>(std::ceil((1.0 + options_.epsilon) * avg));
}

std::optional<size_t> ReplicaPicker::pick_locked(const cache::Hash128& prefix) const {
  if (ring_.empty()) return std::nullopt;
  const int64_t cap = static_cast<int64_t>(capacity_locked());
  auto it = std::lower_bound(ring_.begin(), ring_.end(), prefix.hi,
                             [](const Point& p, uint64_t h) { return p.pos < h; });
  size_t start = static_cast<size_t>(it - ring_.begin());
  // At most every point once; with cap >= ceil(avg) some live replica is under it.
  for (size_t i = 0; i < ring_.size(); ++i) {
    const Point& p = ring_[(start + i) % ring_.size()];
    if (loads_[p.replica] < cap) return p.replica;
  }
  return ring_[start % ring_.size()].replica;  // unreachable in practice
}

std::optional<size_t> ReplicaPicker::pick(const cache::Hash128& prefix) const {
  std::lock_guard lk(mu_);
  return pick_locked(prefix);
}

std::optional<size_t> ReplicaPicker::pick_and_acquire(const cache::Hash128& prefix) {
  std::lock_guard lk(mu_);
  auto r = pick_locked(prefix);
  if (r) {
    ++loads_[*r];
    ++total_load_;
  }
  return r;
}

void ReplicaPicker::acquire(size_t replica) {
  std::lock_guard lk(mu_);
  if (replica >= names_.size() || !live_[replica]) return;
  ++loads_[replica];
  ++total_load_;
}

void ReplicaPicker::release(size_t replica) {
  std::lock_guard lk(mu_);
  if (replica >= names_.size() || !live_[replica] || loads_[replica] == 0) return;
  --loads_[replica];
  --total_load_;
}

size_t ReplicaPicker::add_replica(std::string name) {
  std::lock_guard lk(mu_);
  names_.push_back(std::move(name));
  live_.push_back(true);
  loads_.push_back(0);
  ++live_count_;
  rebuild_locked();
  return names_.size() - 1;
}

void ReplicaPicker::remove_replica(size_t replica) {
  std::lock_guard lk(mu_);
  if (replica >= names_.size() || !live_[replica]) return;
  live_[replica] = false;
  total_load_ -= loads_[replica];
  loads_[replica] = 0;
  --live_count_;
  rebuild_locked();
}

size_t ReplicaPicker::capacity() const {
  std::lock_guard lk(mu_);
  return capacity_locked();
}

int64_t ReplicaPicker::load(size_t replica) const {
  std::lock_guard lk(mu_);
  return replica < loads_.size() ? loads_[replica] : 0;
}

size_t ReplicaPicker::live_replicas() const {
  std::lock_guard lk(mu_);
  return live_count_;
}

}  // namespace frugal::router
