#include "router/replica_picker.h"

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>

using namespace frugal::cache;
using namespace frugal::router;

namespace {
std::vector<std::string> names(size_t n) {
  std::vector<std::string> v;
  for (size_t i = 0; i < n; ++i) v.push_back("replica-" + std::to_string(i));
  return v;
}
Hash128 prefix(int i) { return hash128("prefix-" + std::to_string(i)); }
}  // namespace

TEST_CASE("same prefix, same replica under light load, keys spread over replicas") {
  ReplicaPicker picker(names(4));
  std::map<size_t, int> per_replica;
  for (int i = 0; i < 400; ++i) {
    auto r = picker.pick(prefix(i));
    REQUIRE(r);
    CHECK(picker.pick(prefix(i)) == r);
    ++per_replica[*r];
  }
  CHECK(per_replica.size() == 4);
  for (auto& [r, n] : per_replica) CHECK(n > 40);  // 64 vnodes: no replica is starved
  // A little load elsewhere does not move a prefix.
  auto home = *picker.pick(prefix(7));
  picker.acquire((home + 1) % 4);
  CHECK(picker.pick(prefix(7)) == home);
}

TEST_CASE("under skew the load bound holds: no replica exceeds ceil((1+eps) * average)") {
  ReplicaPickerOptions o;
  o.epsilon = 0.25;
  ReplicaPicker picker(names(4), o);
  // Every request has the same prefix (worst case for affinity).
  std::vector<size_t> assigned;
  for (int i = 0; i < 100; ++i) {
    const size_t cap = picker.capacity();
    auto r = picker.pick_and_acquire(prefix(1));
    REQUIRE(r);
    assigned.push_back(*r);
    for (size_t k = 0; k < 4; ++k) CHECK(static_cast<size_t>(picker.load(k)) <= cap);
  }
  // Total 100 over 4: bound ceil(1.25 * 25) = 32 (31.25 -> 32).
  for (size_t k = 0; k < 4; ++k) {
    CHECK(picker.load(k) <= 32);
    CHECK(picker.load(k) >= 100 - 3 * 32);
  }
  const size_t home = assigned.front();
  CHECK(picker.load(home) >= 25);  // the home replica takes its full share first
  for (size_t r : assigned) picker.release(r);
  for (size_t k = 0; k < 4; ++k) CHECK(picker.load(k) == 0);
  CHECK(picker.pick(prefix(1)) == home);  // affinity returns with the load gone
}

TEST_CASE("removing a replica moves only its keys, adding one takes keys only for itself") {
  ReplicaPicker picker(names(5));
  std::map<int, size_t> before;
  for (int i = 0; i < 500; ++i) before[i] = *picker.pick(prefix(i));
  picker.remove_replica(2);
  CHECK(picker.live_replicas() == 4);
  int moved = 0;
  for (int i = 0; i < 500; ++i) {
    const size_t now = *picker.pick(prefix(i));
    CHECK(now != 2);
    if (before[i] != 2) CHECK(now == before[i]);
    else ++moved;
  }
  CHECK(moved > 0);
  const size_t added = picker.add_replica("replica-new");
  CHECK(added == 5);
  for (int i = 0; i < 500; ++i) {
    const size_t now = *picker.pick(prefix(i));
    if (now != added && before[i] != 2) CHECK(now == before[i]);
  }
}

TEST_CASE("no live replicas: no pick") {
  ReplicaPicker picker(names(1));
  picker.remove_replica(0);
  CHECK_FALSE(picker.pick(prefix(1)).has_value());
  ReplicaPicker empty({});
  CHECK_FALSE(empty.pick(prefix(1)).has_value());
}
