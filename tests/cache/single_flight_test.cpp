#include "cache/single_flight.h"

#include <doctest/doctest.h>

#include <atomic>
#include <barrier>
#include <mutex>
#include <thread>
#include <vector>

using namespace frugal;
using namespace frugal::cache;

namespace {
const CacheKey kKey = hash128("the request");

std::shared_ptr<const CachedResponse> answer(std::string body) {
  auto e = std::make_shared<CachedResponse>();
  e->completion_json = std::move(body);
  return e;
}
}  // namespace

TEST_CASE("100 concurrent identical lookups: exactly one leader, every follower gets its result") {
  constexpr int kCallers = 100;
  constexpr int kThreads = 8;
  SingleFlight sf;
  std::atomic<int> leaders{0}, delivered{0}, joined{0};
  std::mutex mu;
  SingleFlight::Leader leader;
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = t; i < kCallers; i += kThreads) {
        auto l = sf.join(kKey, [&](const FlightOutcome& o) {
          CHECK(o.ok());
          CHECK(o.entry->completion_json == "shared");
          delivered.fetch_add(1);
        });
        if (l) {
          leaders.fetch_add(1);
          std::lock_guard lk(mu);
          leader = std::move(l);
        }
        joined.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  // Every caller has joined before the leader completes (the leader is still in
  // flight): exactly one leader, 99 followers waiting.
  CHECK(joined.load() == kCallers);
  CHECK(leaders.load() == 1);
  CHECK(delivered.load() == 0);
  REQUIRE(leader);
  leader.succeed(answer("shared"));
  CHECK(delivered.load() == kCallers - 1);
  CHECK(sf.in_flight() == 0);
}

TEST_CASE("a failed leader releases followers with the error, the next caller leads anew") {
  SingleFlight sf;
  auto leader = sf.join(kKey, nullptr);
  REQUIRE(leader);
  int failures = 0;
  for (int i = 0; i < 5; ++i) {
    auto f = sf.join(kKey, [&](const FlightOutcome& o) {
      CHECK_FALSE(o.ok());
      REQUIRE(o.error.has_value());
      CHECK(o.error->kind == ErrorKind::kUpstream);
      ++failures;
    });
    CHECK_FALSE(f);
  }
  leader.fail(make_error(ErrorKind::kUpstream, "boom"));
  CHECK(failures == 5);
  auto next = sf.join(kKey, nullptr);
  CHECK(next);
}

TEST_CASE("an abandoned leader (destroyed without finishing) fails its followers") {
  SingleFlight sf;
  bool told = false;
  {
    auto leader = sf.join(kKey, nullptr);
    REQUIRE(leader);
    CHECK_FALSE(sf.join(kKey, [&](const FlightOutcome& o) {
      told = true;
      CHECK_FALSE(o.ok());
      CHECK(o.error->kind == ErrorKind::kUnavailable);
    }));
  }
  CHECK(told);
  CHECK(sf.in_flight() == 0);
}

TEST_CASE("streamed chunks fan out to followers in order, including the backlog of late joiners") {
  SingleFlight sf;
  auto leader = sf.join(kKey, nullptr);
  REQUIRE(leader);
  std::vector<std::string> early, late;
  bool early_done = false, late_done = false;
  CHECK_FALSE(sf.join(kKey, [&](const FlightOutcome&) { early_done = true; },
                      [&](std::string_view c) { early.emplace_back(c); }));
  leader.publish_chunk("a");
  leader.publish_chunk("b");
  CHECK_FALSE(sf.join(kKey, [&](const FlightOutcome&) { late_done = true; },
                      [&](std::string_view c) { late.emplace_back(c); }));
  CHECK(late == std::vector<std::string>{"a", "b"});  // replayed on join
  leader.publish_chunk("c");
  leader.succeed(answer("abc"));
  CHECK(early == std::vector<std::string>{"a", "b", "c"});
  CHECK(late == std::vector<std::string>{"a", "b", "c"});
  CHECK(early_done);
  CHECK(late_done);
}

TEST_CASE("chunk fan-out under concurrency: every follower sees every chunk exactly once, in order") {
  constexpr int kChunks = 200;
  constexpr int kFollowers = 16;
  SingleFlight sf;
  auto leader = sf.join(kKey, nullptr);
  REQUIRE(leader);
  struct Seen {
    std::vector<int> chunks;
    bool done = false;
  };
  std::vector<Seen> seen(kFollowers);
  std::thread publisher([&] {
    for (int i = 0; i < kChunks; ++i) leader.publish_chunk(std::to_string(i));
  });
  std::vector<std::thread> joiners;
  for (int f = 0; f < kFollowers; ++f) {
    joiners.emplace_back([&, f] {
      CHECK_FALSE(sf.join(kKey, [&, f](const FlightOutcome&) { seen[f].done = true; },
                          [&, f](std::string_view c) { seen[f].chunks.push_back(std::stoi(std::string(c))); }));
    });
  }
  for (auto& t : joiners) t.join();
  publisher.join();
  leader.succeed(answer("x"));
  for (int f = 0; f < kFollowers; ++f) {
    CHECK(seen[f].done);
    REQUIRE(seen[f].chunks.size() == kChunks);
    for (int i = 0; i < kChunks; ++i) CHECK(seen[f].chunks[i] == i);
  }
}

TEST_CASE("different keys fly independently") {
  SingleFlight sf;
  auto a = sf.join(hash128("a"), nullptr);
  auto b = sf.join(hash128("b"), nullptr);
  CHECK(a);
  CHECK(b);
  CHECK(sf.in_flight() == 2);
}
