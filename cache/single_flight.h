#pragma once
// Collapses concurrent identical cache misses into one upstream call.
//
// The first join() for a key makes the caller the leader: it receives a Leader handle
// and goes upstream. Later join()s for the same key, while the leader is in flight,
// become followers: they register callbacks and are told the outcome. A leader may
// also publish its stream chunks as they arrive; each follower receives every chunk
// (including those published before it joined) in order, then the outcome.
//
// Threads: all methods are thread-safe. Follower callbacks run on the thread that
// completes the leader (or publishes the chunk), or on the joining thread for chunks
// already published when it joined; never concurrently for one follower. Callbacks
// must be cheap and must not block (post to your own executor); they may call join()
// again (e.g. for a retry) but must not call back into the Leader that feeds them.
// Lifetime: SingleFlight must outlive every Leader it handed out.
//
// Request path (sketch):
//   key = make_cache_key(req, scope);
//   cache.lookup(key, ...)            -> hit: replay the entry in the form asked for
//   miss: auto leader = flights.join(key, on_done, on_chunk);
//     leader:   call upstream; leader.publish_chunk(c) per chunk;
//               e = cache.store(key, entry, ttl); leader.succeed(e);
//               on upstream error: leader.fail(err) (or just drop the Leader)
//     follower: on_chunk forwards chunks as they come; on_done(o): o.ok() -> finish
//               from o.entry; else go upstream itself (no second join needed).
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "cache/cache_key.h"
#include "cache/cached_response.h"
#include "core/error.h"

namespace frugal::cache {

struct FlightOutcome {
  // Success: the answer (also what the leader stores in the cache).
  std::shared_ptr<const CachedResponse> entry;
  // Failure: why the leader failed. Followers should go upstream themselves.
  std::optional<Error> error;
  bool ok() const { return entry != nullptr; }
};

class SingleFlight {
  struct Flight;

 public:
  using DoneFn = std::function<void(const FlightOutcome&)>;
  // `chunk` is one chat.completion.chunk payload; the view is valid during the call.
  using ChunkFn = std::function<void(std::string_view chunk)>;

  // Held by the leader. Exactly one of succeed()/fail() should be called; destroying
  // an unfinished Leader fails the flight (kUnavailable "leader abandoned"), so a
  // leader that is cancelled never strands its followers. Move-only.
  class Leader {
   public:
    Leader() = default;
    Leader(Leader&&) noexcept = default;
    Leader& operator=(Leader&& o) noexcept;
    ~Leader();
    explicit operator bool() const { return flight_ != nullptr; }

    // Fans one chunk out to current and future followers (they get all chunks so far).
    void publish_chunk(std::string_view chunk);
    void succeed(std::shared_ptr<const CachedResponse> entry);
    void fail(Error error);

   private:
    friend class SingleFlight;
    Leader(SingleFlight* owner, std::shared_ptr<Flight> f) : owner_(owner), flight_(std::move(f)) {}
    void finish(FlightOutcome outcome);
    SingleFlight* owner_ = nullptr;
    std::shared_ptr<Flight> flight_;
  };

  // Returns a Leader (operator bool true) when the caller leads; otherwise registers
  // `on_done` (and `on_chunk`, may be empty) as a follower and returns an empty Leader.
  // on_done runs exactly once for a follower.
  Leader join(const CacheKey& key, DoneFn on_done, ChunkFn on_chunk = {});

  size_t in_flight() const;

 private:
  void complete(const std::shared_ptr<Flight>& f, FlightOutcome outcome);
  mutable std::mutex mu_;
  std::unordered_map<CacheKey, std::shared_ptr<Flight>, CacheKeyHasher> flights_;
};

}  // namespace frugal::cache
