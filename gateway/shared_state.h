#pragma once
// State shared by the replicas of a gateway through Redis (`shared_state:`;
// docs/security.md): the rpm/tpm buckets of keys and teams, budget spend and
// reservations, virtual-key records (so a revocation through one replica reaches the
// others) and, optionally, a tier of the exact cache. Every update is one Lua script
// run atomically by Redis on its own clock (TIME), so N replicas admit what one would.
//
// The client is minimal RESP over a blocking socket. A call on the request path
// (admit, reserve_budget, cache_get) blocks its I/O thread for one round trip (~0.1 ms
// on loopback) and never longer than shared_state.timeout, connecting included (the
// address is resolved at start and by the maintenance thread, never per call). After a
// transport failure Redis counts as down: calls fail at once, without touching the
// network, until the maintenance thread's probe (every shared_state.poll) gets an
// answer. A failed call returns an error and is counted; the caller applies
// shared_state.on_failure.
//
// Writes that need no answer (budget settlements, cache fills) are queued for the
// maintenance thread, retried while Redis is down, and dropped (counted) when the
// queue is full or when they are older than shared_state.reservation_ttl (by then
// Redis has expired the reservation they would release).
//
// Thread-safe; connections are pooled.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "core/money.h"
#include "policies/budget.h"
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

  // BudgetTracker::reserve across replicas: admitted while, for every scope, spent in
  // the window + live reservations < hard (the same rule as one process). When
  // admitted, `estimate` is held under `id` until settle_budget or until
  // reservation_ttl passes. On a denial, `denied` names the exhausted budget.
  Result<policies::BudgetCheck> reserve_budget(const std::vector<policies::BudgetScope>& scopes, Money estimate,
                                               const std::string& id, std::string* denied = nullptr);
  // Releases reservation `id` and adds `cost` to each scope's window (queued).
  void settle_budget(const std::vector<policies::BudgetScope>& scopes, const std::string& id, Money cost);
  // Unique across replicas: a random prefix per process and a counter.
  std::string new_reservation_id();

  // Virtual-key records (gateway/shared_keys.h): a record by name (stored form, the
  // secret's hash only) and a generation counter bumped with every put.
  Result<void> put_key(const std::string& name, const std::string& record);
  void put_key_later(const std::string& name, const std::string& record);  // queued
  Result<int64_t> key_generation();
  Result<std::vector<std::string>> key_records();

  // The exact cache's shared tier: the encoded entry (cache/cached_response.h) under
  // its key, or nullopt. cache_put is queued and keeps the entry ttl_ms.
  Result<std::optional<std::string>> cache_get(const std::string& key);
  void cache_put(const std::string& key, std::string bytes, int64_t ttl_ms);

  // Runs `tick` on the maintenance thread every shared_state.poll while Redis answers.
  // Set once, before requests. stop() (or the destructor) gives queued writes up to
  // max(1 s, 4 × timeout) to drain while Redis answers, then joins the thread.
  void set_tick(std::function<void()> tick);
  void stop();

  // Calls that failed since start (each one fell back or was refused per on_failure).
  int64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  // Queued writes given up (queue full, or Redis down for longer than they matter).
  int64_t dropped_writes() const { return dropped_.load(std::memory_order_relaxed); }
  bool fail_open() const { return cfg_.fail_open; }
  bool down() const { return down_.load(std::memory_order_relaxed); }
  const config::SharedStateConfig& config() const { return cfg_; }
  // The URL without its credentials, for logs.
  std::string shown_url() const;

 private:
  struct Reply {
    char type = 0;  // '+', '-', ':', '$', '*'
    bool nil = false;
    int64_t integer = 0;
    std::string text;
    std::vector<Reply> items;
  };
  struct Job {
    std::vector<std::string> args;
    int64_t give_up_ms = 0;  // steady clock
  };
  // probe: used by the maintenance thread even while Redis counts as down.
  Result<Reply> call(const std::vector<std::string>& args, bool probe = false);
  Result<int> connect_fd(int timeout_ms);
  bool resolve();
  int take_fd();
  void give_fd(int fd);
  void close_idle();
  void enqueue(std::vector<std::string> args);
  void maintain();

  config::SharedStateConfig cfg_;
  std::string host_;
  uint16_t port_ = 6379;
  std::string user_, password_;  // from the URL; sent with AUTH on each new connection
  int db_ = 0;                   // SELECTed on each new connection when not 0
  std::string id_prefix_;
  std::atomic<uint64_t> next_id_{0};

  std::mutex mu_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;  // 0: not resolved yet
  std::vector<int> idle_;   // pooled connections
  std::deque<Job> jobs_;
  std::function<void()> tick_;
  bool stop_ = false;
  std::condition_variable cv_;
  std::thread thread_;

  std::atomic<bool> down_{false};
  std::atomic<int64_t> failures_{0};
  std::atomic<int64_t> dropped_{0};
};

}  // namespace frugal::gateway
