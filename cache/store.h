#pragma once
// The process's one RocksDB instance, shared by every component that persists data.
// Each component owns a column family: `cache` (this library), `ledger`, `rollups`,
// `keys` (others). Components register their column family's options (merge
// operators, compaction style) when the Store is opened, at start-up.
//
// Threads: a Store is immutable after open() and safe to use from any thread; the
// rocksdb::DB and the handles are thread-safe. RocksDB calls block on disk: never
// make them on an I/O (network) thread — use a pool or a batched writer.
// Lifetime: column family handles are owned by the Store and valid while it lives;
// hold the shared_ptr<Store> for as long as you use db() or a handle.
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace frugal::cache {

struct ColumnFamilySpec {
  std::string name;
  rocksdb::ColumnFamilyOptions options;
};

struct StoreOptions {
  int max_background_jobs = 2;              // a small box: flushes + compactions share 2 cores
  size_t write_buffer_size = 16u << 20;     // per column family memtable
  size_t max_total_wal_size = 64u << 20;    // forces flushes of idle column families
  bool create_if_missing = true;
};

// RocksDB status -> frugal Error (kInternal, message names the operation).
Error rocks_error(const rocksdb::Status& s, std::string_view what);

class Store {
 public:
  // Opens (creating if missing) the database at `dir` with the given column families,
  // creating any that do not exist yet. Column families present on disk but not
  // listed are opened with default options so that open never fails on them (their
  // owner may be disabled in this configuration). WAL is on.
  static Result<std::shared_ptr<Store>> open(const std::string& dir,
                                             std::vector<ColumnFamilySpec> specs,
                                             const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The handle for `name`, or nullptr when no such column family was opened.
  rocksdb::ColumnFamilyHandle* cf(std::string_view name) const;
  rocksdb::DB* db() const { return db_.get(); }
  const std::string& dir() const { return dir_; }

  // Flushes memtables and syncs the WAL (shutdown, tests).
  Result<void> flush();

 private:
  Store() = default;
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace frugal::cache
