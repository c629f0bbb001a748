#pragma once
// Request and token buckets for rpm/tpm limits, per virtual key and per team.
//
// A bucket holds up to `capacity` units and refills at capacity per window (a "per
// minute" limit when the window is a minute), continuously. A request is admitted when
// every request bucket in its scope holds at least one unit and every token bucket is
// not in debt; admission takes one unit from each request bucket, all under one lock,
// so concurrent requests never overdraw a request bucket: over any interval of length
// T starting with full buckets at most capacity + capacity * T / window are admitted.
// Tokens are charged after the answer (its real usage), so a token bucket can go into
// debt by the requests in flight when it ran out; it then refuses until refilled.
// Thread-safe; time from an injected Clock (tests control it).
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policies/budget.h"

namespace frugal::policies {

struct RateScope {
  std::string name;       // "key:ci-bot", "team:search": a bucket's identity and the 429's message
  int64_t rpm = 0;        // 0 = no request limit
  int64_t tpm = 0;        // 0 = no token limit
};

struct RateDecision {
  bool allowed = true;
  int64_t retry_after_s = 0;  // when refused: until the refusing bucket has a unit again
  std::string message;        // which limit refused
};

class RateLimiter {
 public:
  RateLimiter(const Clock* clock, int64_t window_us) : clock_(clock), window_us_(window_us) {}

  // Admits one request against every scope's request bucket and checks its token
  // bucket; on refusal nothing is taken.
  RateDecision admit(const std::vector<RateScope>& scopes);
  // Charges `tokens` (the answer's input + output tokens) to every scope's token bucket.
  void charge_tokens(const std::vector<RateScope>& scopes, int64_t tokens);
  // Sets the window (config reload); buckets keep their levels.
  void set_window_us(int64_t window_us);

 private:
  struct Bucket {
    double level = 0;
    int64_t updated_us = 0;
    bool fresh = true;  // not yet touched: starts full
  };
  void refill(Bucket& b, int64_t capacity, int64_t now);
  double seconds_until(const Bucket& b, int64_t capacity, double need) const;

  const Clock* clock_;
  int64_t window_us_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> requests_;
  std::unordered_map<std::string, Bucket> tokens_;
};

}  // namespace frugal::policies
