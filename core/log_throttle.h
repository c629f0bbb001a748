#pragma once
// Rate limiting for log lines that a fault can repeat thousands of times a second (a
// full disk, a pathological regex): at most `burst` lines per `interval`; the first line
// let through after a quiet spell learns how many were suppressed in between.
//
// Threads: admit() is thread-safe (a mutex; callers are already on an error path).
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace frugal {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LogThrottle(Clock::duration interval = std::chrono::seconds(10), uint32_t burst = 5)
      : interval_(interval), burst_(burst) {}

  // nullopt: drop this line. Otherwise write it, mentioning the returned number of
  // lines suppressed since the last one written (0: none).
  std::optional<uint64_t> admit(Clock::time_point now = Clock::now()) {
    std::lock_guard lk(mu_);
    if (now - window_start_ >= interval_) {
      window_start_ = now;
      in_window_ = 0;
    }
    if (in_window_ >= burst_) {
      ++suppressed_;
      return std::nullopt;
    }
    ++in_window_;
    const uint64_t s = suppressed_;
    suppressed_ = 0;
    return s;
  }

 private:
  std::mutex mu_;
  Clock::duration interval_;
  uint32_t burst_;
  Clock::time_point window_start_{};
  uint32_t in_window_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace frugal
