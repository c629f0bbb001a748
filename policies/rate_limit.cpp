#include "policies/rate_limit.h"

#include <algorithm>
#include <cmath>

namespace frugal::policies {

void RateLimiter::refill(Bucket& b, int64_t capacity, int64_t now) {
  if (b.fresh) {
    b.fresh = false;
    b.level = static_cast<double>(capacity);
    b.updated_us = now;
    return;
  }
  if (now > b.updated_us) {
    const double add = static_cast<double>(capacity) * static_cast<double>(now - b.updated_us) /
                       static_cast<double>(window_us_);
    b.level = std::min(static_cast<double>(capacity), b.level + add);
    b.updated_us = now;
  }
}

double RateLimiter::seconds_until(const Bucket& b, int64_t capacity, double need) const {
  const double missing = need - b.level;
  if (missing <= 0 || capacity <= 0) return 0;
  return missing * static_cast<double>(window_us_) / static_cast<double>(capacity) / 1e6;
}

RateDecision RateLimiter::admit(const std::vector<RateScope>& scopes) {
  const int64_t now = clock_->now_us();
  std::lock_guard lock(mu_);
  RateDecision d;
  for (const RateScope& s : scopes) {
    if (s.rpm > 0) {
      Bucket& b = requests_[s.name];
      refill(b, s.rpm, now);
      if (b.level < 1.0) {
        d.allowed = false;
        d.retry_after_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(seconds_until(b, s.rpm, 1.0))));
        d.message = "Rate limit of " + std::to_string(s.rpm) + " requests per " +
                    std::to_string(window_us_ / 1'000'000) + " s reached for " + s.name + ".";
        return d;
      }
    }
    if (s.tpm > 0) {
      Bucket& b = tokens_[s.name];
      refill(b, s.tpm, now);
      if (b.level <= 0) {
        d.allowed = false;
        d.retry_after_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(seconds_until(b, s.tpm, 1.0))));
        d.message = "Token limit of " + std::to_string(s.tpm) + " tokens per " +
                    std::to_string(window_us_ / 1'000'000) + " s reached for " + s.name + ".";
        return d;
      }
    }
  }
  for (const RateScope& s : scopes)
    if (s.rpm > 0) requests_[s.name].level -= 1.0;
  return d;
}

void RateLimiter::charge_tokens(const std::vector<RateScope>& scopes, int64_t tokens) {
  if (tokens <= 0) return;
  const int64_t now = clock_->now_us();
  std::lock_guard lock(mu_);
  for (const RateScope& s : scopes) {
    if (s.tpm <= 0) continue;
    Bucket& b = tokens_[s.name];
    refill(b, s.tpm, now);
    b.level -= static_cast<double>(tokens);
  }
}

void RateLimiter::set_window_us(int64_t window_us) {
  std::lock_guard lock(mu_);
  window_us_ = std::max<int64_t>(1, window_us);
}

}  // namespace frugal::policies
