#pragma once
// State shared by the replicas of a gateway through Redis (`shared_state:`;
// docs/security.md): today the rpm/tpm buckets of keys and teams. Each admission and
// each token charge is one Lua script run atomically by Redis on its own clock (TIME),
// so N replicas admit what one would.
//
// The client is minimal RESP over a blocking loopback/LAN socket with a deadline
// (shared_state.timeout): a call blocks the calling I/O thread for one round trip
// (~0.1 ms on loopback). A failed call (connect, timeout, error reply) returns an error
// and is counted; the caller applies shared_state.on_failure. Connections are pooled;
// thread-safe.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "policies/rate_limit.h"

namespace frugal::gateway {

class SharedState {
 public:
  explicit SharedState(const config::SharedStateConfig& cfg);
  ~SharedState();
  SharedState(const SharedState&) = delete;
  SharedState& operator=(const SharedState&) = delete;

  // The same contract as policies::RateLimiter::admit / charge_tokens, across replicas.
  Result<policies::RateDecision> admit(const std::vector<policies::RateScope>& scopes, int64_t window_us);
  Result<void> charge_tokens(const std::vector<policies::RateScope>& scopes, int64_t tokens, int64_t window_us);

  // Calls that failed since start (each one fell back or was refused per on_failure).
  int64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  bool fail_open() const { return cfg_.fail_open; }

 private:
  struct Reply {
    char type = 0;  // '+', '-', ':', '$', '*'
    int64_t integer = 0;
    std::string text;
    std::vector<Reply> items;
  };
  Result<Reply> call(const std::vector<std::string>& args);
  Result<int> connect_fd();
  int take_fd();
  void give_fd(int fd);

  config::SharedStateConfig cfg_;
  std::string host_;
  uint16_t port_ = 6379;
  std::mutex mu_;
  std::vector<int> idle_;  // pooled connections
  std::atomic<int64_t> failures_{0};
};

}  // namespace frugal::gateway
