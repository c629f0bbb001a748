#include "policies/rate_limit.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace frugal::policies;

namespace {
constexpr int64_t kMinuteUs = 60'000'000;
}

TEST_CASE("rate limiter: 64 concurrent clients against a 60 rpm key are admitted exactly 60 times in the window") {
  ManualClock clock(1'000'000'000);
  RateLimiter limiter(&clock, kMinuteUs);
  const std::vector<RateScope> scopes{{"key ci", 60, 0}};
  std::atomic<int> admitted{0}, refused{0};
  std::atomic<int64_t> max_retry{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 64; ++t)
    clients.emplace_back([&] {
      for (int i = 0; i < 4; ++i) {  // 256 attempts at the same instant
        const RateDecision d = limiter.admit(scopes);
        if (d.allowed) {
          ++admitted;
        } else {
          ++refused;
          int64_t prev = max_retry.load();
          while (d.retry_after_s > prev && !max_retry.compare_exchange_weak(prev, d.retry_after_s)) {
          }
        }
      }
    });
  for (auto& c : clients) c.join();
  CHECK(admitted == 60);  // the clock did not move: no refill, so exactly the capacity
  CHECK(refused == 256 - 60);
  CHECK(max_retry == 1);  // one request's worth refills in a second
  clock.advance(999'999);
  CHECK(!limiter.admit(scopes).allowed);
  clock.advance(1);
  CHECK(limiter.admit(scopes).allowed);  // one per second
  CHECK(!limiter.admit(scopes).allowed);
  clock.advance(kMinuteUs * 5);  // refills to the capacity, not beyond
  int burst = 0;
  while (limiter.admit(scopes).allowed) ++burst;
  CHECK(burst == 60);
}

TEST_CASE("rate limiter: a refused request takes nothing from the other scopes, tokens go into debt") {
  ManualClock clock(0);
  RateLimiter limiter(&clock, kMinuteUs);
  const std::vector<RateScope> key_and_team{{"key a", 10, 1'000}, {"team t", 2, 0}};
  const std::vector<RateScope> key_only{{"key a", 10, 1'000}};
  CHECK(limiter.admit(key_and_team).allowed);
  CHECK(limiter.admit(key_and_team).allowed);
  const RateDecision d = limiter.admit(key_and_team);  // the team's 2 are used up
  CHECK(!d.allowed);
  CHECK(d.message.find("team t") != std::string::npos);
  CHECK(d.retry_after_s == 30);  // 2 per minute: one every 30 s
  for (int i = 0; i < 8; ++i) CHECK(limiter.admit(key_only).allowed);  // the key still had 8
  CHECK(!limiter.admit(key_only).allowed);

  ManualClock c2(0);
  RateLimiter tokens(&c2, kMinuteUs);
  const std::vector<RateScope> tpm{{"key b", 0, 1'000}};
  CHECK(tokens.admit(tpm).allowed);
  tokens.charge_tokens(tpm, 1'500);  // an answer bigger than what was left: debt
  const RateDecision t = tokens.admit(tpm);
  CHECK(!t.allowed);
  CHECK(t.message.find("Token limit of 1000") != std::string::npos);
  CHECK(t.retry_after_s == 31);  // 501 tokens at 1000 per minute
  c2.advance(31'000'000);
  CHECK(tokens.admit(tpm).allowed);
}
