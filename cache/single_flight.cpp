#include "cache/single_flight.h"

#include <string>
#include <vector>

namespace frugal::cache {
namespace {

struct Follower {
  // Serialises delivery to this follower: the joining thread replays the backlog
  // while the leader may be publishing; whoever holds `mu` delivers the next chunks.
  std::mutex mu;
  size_t delivered = 0;  // chunks handed to on_chunk so far
  bool finished = false;
  SingleFlight::DoneFn on_done;
  SingleFlight::ChunkFn on_chunk;
};

}  // namespace

struct SingleFlight::Flight {
  CacheKey key;
  std::mutex mu;  // guards chunks, followers, done; nested inside SingleFlight::mu_
  std::vector<std::shared_ptr<const std::string>> chunks;
  std::vector<std::shared_ptr<Follower>> followers;
  bool done = false;

  std::vector<std::shared_ptr<const std::string>> chunks_from(size_t from) {
    std::lock_guard lk(mu);
    if (from >= chunks.size()) return {};
    return {chunks.begin() + static_cast<std::ptrdiff_t>(from), chunks.end()};
  }

  // Delivers chunks the follower has not seen yet. Requires fo.mu held.
  void catch_up(Follower& fo) {
    if (fo.finished || !fo.on_chunk) return;
    for (;;) {
      auto next = chunks_from(fo.delivered);
      if (next.empty()) return;
      for (const auto& c : next) fo.on_chunk(*c);
      fo.delivered += next.size();
    }
  }
};

SingleFlight::Leader& SingleFlight::Leader::operator=(Leader&& o) noexcept {
  if (this != &o) {
    if (flight_) finish(FlightOutcome{nullptr, make_error(ErrorKind::kUnavailable, "leader abandoned")});
    owner_ = o.owner_;
    flight_ = std::move(o.flight_);
  }
  return *this;
}

SingleFlight::Leader::~Leader() {
  if (flight_) finish(FlightOutcome{nullptr, make_error(ErrorKind::kUnavailable, "leader abandoned")});
}

void SingleFlight::Leader::publish_chunk(std::string_view chunk) {
  if (!flight_) return;
  std::vector<std::shared_ptr<Follower>> followers;
  {
    std::lock_guard lk(flight_->mu);
    flight_->chunks.push_back(std::make_shared<const std::string>(chunk));
    followers = flight_->followers;
  }
  for (auto& fo : followers) {
    std::lock_guard lk(fo->mu);
    flight_->catch_up(*fo);
  }
}

void SingleFlight::Leader::succeed(std::shared_ptr<const CachedResponse> entry) {
  if (!entry) {
    fail(make_error(ErrorKind::kInternal, "single flight: succeeded without an entry"));
    return;
  }
  finish(FlightOutcome{std::move(entry), std::nullopt});
}

void SingleFlight::Leader::fail(Error error) { finish(FlightOutcome{nullptr, std::move(error)}); }

void SingleFlight::Leader::finish(FlightOutcome outcome) {
  auto f = std::move(flight_);
  if (f) owner_->complete(f, std::move(outcome));
}

SingleFlight::Leader SingleFlight::join(const CacheKey& key, DoneFn on_done, ChunkFn on_chunk) {
  std::shared_ptr<Follower> fo;
  std::shared_ptr<Flight> f;
  {
    std::lock_guard lk(mu_);
    auto it = flights_.find(key);
    if (it == flights_.end()) {
      f = std::make_shared<Flight>();
      f->key = key;
      flights_.emplace(key, f);
      return Leader(this, std::move(f));
    }
    f = it->second;
    fo = std::make_shared<Follower>();
    fo->on_done = std::move(on_done);
    fo->on_chunk = std::move(on_chunk);
    std::lock_guard flk(f->mu);  // still listed in flights_, so not done yet
    f->followers.push_back(fo);
  }
  // Replay the backlog outside the map lock.
  std::lock_guard lk(fo->mu);
  f->catch_up(*fo);
  return Leader();
}

void SingleFlight::complete(const std::shared_ptr<Flight>& f, FlightOutcome outcome) {
  std::vector<std::shared_ptr<Follower>> followers;
  {
    std::lock_guard lk(mu_);
    // Unlist first: a join() from now on leads a new flight (or hits the cache).
    if (auto it = flights_.find(f->key); it != flights_.end() && it->second == f) flights_.erase(it);
    std::lock_guard flk(f->mu);
    f->done = true;
    followers = std::move(f->followers);
  }
  for (auto& fo : followers) {
    std::lock_guard lk(fo->mu);
    f->catch_up(*fo);
    fo->finished = true;
    if (fo->on_done) fo->on_done(outcome);
  }
}

size_t SingleFlight::in_flight() const {
  std::lock_guard lk(mu_);
  return flights_.size();
}

}  // namespace frugal::cache
