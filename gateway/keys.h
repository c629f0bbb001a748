#pragma once
// Virtual keys: the API keys clients present to frugal (never the providers' keys).
//
// A key is stored hashed (SHA-256 of the secret, hex) in RocksDB's `keys` column
// family, one record per name, with its team, allowed models and routes, rpm/tpm and
// stream limits, an optional budget, expiry, revocation and metadata. The secret is
// shown once, when the key is created or rotated. The whole set is loaded into memory
// at start; the request path looks a presented key up in that index (no disk read).
// Changes (create, rotate, revoke) write RocksDB first, then publish a new index with
// one atomic store, so they apply to the very next request.
//
// Threads: lookups from any thread; changes block on RocksDB (never on an I/O thread)
// and are serialised by a mutex.
#include <rocksdb/db.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/policy_config.h"
#include "core/error.h"
#include "core/money.h"
#include "policies/budget.h"

namespace frugal::cache {
class Store;
}

namespace frugal::gateway {

inline constexpr const char* kKeysCf = "keys";
inline constexpr std::string_view kKeyPrefix = "fk-";

struct VirtualKey {
  std::string name;    // unique; the key id recorded in ledger rows, logs and metrics
  std::string hash;    // SHA-256 of the secret, 64 hex digits
  std::string hint;    // the secret's first characters ("fk-3f9a…"), to recognise it
  std::string team;    // "" = none
  int64_t rpm = 0;     // 0 = unlimited
  int64_t tpm = 0;
  int64_t max_streams = 0;
  std::vector<std::string> models;  // empty = any; "prefix*" matches a prefix
  std::vector<std::string> routes;  // empty = any (a policy route or request type)
  std::optional<Money> budget;      // hard limit per budget_per
  config::BudgetPeriod budget_per = config::BudgetPeriod::kDay;
  int64_t created_us = 0;
  int64_t expires_us = 0;  // 0 = never
  int64_t revoked_us = 0;  // 0 = active
  std::map<std::string, std::string> metadata;

  bool operator==(const VirtualKey&) const = default;
};

// Stored form (JSON) and back.
std::string encode_key(const VirtualKey& k);
Result<VirtualKey> decode_key(std::string_view json);
// The public view (no hash): for `frugal keys list|show` and GET /admin/keys.
void write_key_json(std::string& out, const VirtualKey& k, int64_t now_us);
// A key from the admin API's JSON body (name, team, rpm, tpm, max_streams, models,
// routes, budget_usd, budget_per, expires, metadata); hash and times are not read.
Result<VirtualKey> key_from_request_json(std::string_view json, int64_t now_us);

std::string sha256_hex(std::string_view data);
// "fk-" and 48 random base62 characters (~285 bits, from the OS's CSPRNG).
Result<std::string> new_key_secret();
// Equality without an early exit (tokens, hashes).
bool constant_time_equal(std::string_view a, std::string_view b);
// Names: 1-64 of [A-Za-z0-9._-].
bool valid_key_name(std::string_view name);
// "30d", "12h", "90m", "3600s" from now; or an absolute time (parse_time_param's forms).
Result<int64_t> parse_expiry(std::string_view text, int64_t now_us);

// What the request path keeps per key name across changes of its record.
struct KeyRuntime {
  std::atomic<int64_t> streams{0};  // streamed requests in flight
  // The key's own budget (null without one), a tracker of one budget scoped to the key.
  std::shared_ptr<policies::BudgetTracker> budget;
};

struct KeyEntry {
  VirtualKey rec;
  std::shared_ptr<KeyRuntime> runtime;
};

enum class KeyState { kValid, kUnknown, kExpired, kRevoked };

class KeyStore {
 public:
  // Loads every key from the `keys` column family of `store` (which must hold it).
  static Result<std::unique_ptr<KeyStore>> open(std::shared_ptr<cache::Store> store, const policies::Clock* clock);

  // Request path: the entry of a presented secret and whether it may be used now.
  struct Lookup {
    KeyState state = KeyState::kUnknown;
    std::shared_ptr<const KeyEntry> entry;  // set unless kUnknown
  };
  Lookup find_secret(std::string_view secret, int64_t now_us) const;
  std::shared_ptr<const KeyEntry> find_name(std::string_view name) const;
  std::vector<VirtualKey> list() const;
  size_t size() const;

  // Blocking. create: the secret (shown once); the name must be new. rotate: a new
  // secret for the name (the old one stops working at once). revoke: the record, now
  // revoked (kept, so that list shows it and its secret stays refused).
  Result<std::string> create(VirtualKey rec);
  Result<std::string> rotate(const std::string& name);
  Result<VirtualKey> revoke(const std::string& name);
  // Re-reads the column family (tests; a CLI write while the gateway was down).
  Result<void> reload();

  // Replicas (gateway/shared_keys.h). `mirror` is called with every record written by
  // create, rotate and revoke, after RocksDB and under the write lock; set it before
  // requests. merge() takes the records another replica published: a record this store
  // lacks or holds differently is written and published, except that a revocation
  // here is never undone by a record that is not revoked. Returns the records the
  // others should get: those missing from `remote` and those whose revocation wins.
  void set_mirror(std::function<void(const VirtualKey&)> mirror);
  Result<std::vector<VirtualKey>> merge(const std::vector<VirtualKey>& remote);

 private:
  struct Index {
    std::unordered_map<std::string, std::shared_ptr<const KeyEntry>> by_hash;
    std::map<std::string, std::shared_ptr<const KeyEntry>, std::less<>> by_name;
  };
  KeyStore(std::shared_ptr<cache::Store> store, const policies::Clock* clock);
  Result<void> put(const VirtualKey& rec);
  // A new index from `records`; runtimes are carried over by name.
  void publish(std::vector<VirtualKey> records);
  Result<std::vector<VirtualKey>> read_all() const;

  std::shared_ptr<cache::Store> store_;
  rocksdb::ColumnFamilyHandle* cf_ = nullptr;
  const policies::Clock* clock_;
  std::atomic<std::shared_ptr<const Index>> index_;
  std::mutex write_mu_;
  std::map<std::string, std::shared_ptr<KeyRuntime>> runtimes_;  // under write_mu_
  std::function<void(const VirtualKey&)> mirror_;                 // under write_mu_
};

// Whether `model` is allowed by a key's list (empty = any; "prefix*" = a prefix).
bool name_allowed(const std::vector<std::string>& allowed, std::string_view name);

}  // namespace frugal::gateway
