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
//
// Write errors (a full disk): RocksDB stops accepting writes after a background error
// (the WAL append or a flush failed with ENOSPC); every write then fails at once with
// that error, reads keep working. The Store notices (health()), and a thread of its own
// calls DB::Resume() every StoreOptions::resume_interval until a write path works again
// (RocksDB's own recovery is switched off: its SstFileManager waits for a free-space
// reserve as large as the biggest write buffer, which a small volume never has, and it
// makes DB::Resume() answer Busy meanwhile). One case is not resumed: a failed WAL
// append while every memtable is empty (StoreHealth::needs_restart; the Store writes a
// small key after open and after each Resume() so that this is rare).
// RocksDB's info log goes to stderr, WARN and
// above, rate-limited, instead of a LOG file in the data directory: that file was the
// first writer to hit the full disk, and RocksDB asserts on its next append
// (WritableFileWriter::AssertFalseAndGetStatusForPrevError in Debian's 7.8 build).
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
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
  std::chrono::milliseconds resume_interval{500};  // DB::Resume() attempts while writes fail
  rocksdb::Env* env = nullptr;                      // tests: fault injection; null = default
};

struct StoreHealth {
  bool writable = true;             // false from a background error until a Resume() succeeds
  std::string error;                // the background error, while !writable
  uint64_t background_errors = 0;   // since open
  uint64_t recoveries = 0;          // successful Resume()s since open
  // A write-ahead-log append failed while every memtable was empty: RocksDB 7.8 would
  // resume onto the failed log file and abort the process at the next write, so the
  // Store does not resume; writes fail until frugal is restarted.
  bool needs_restart = false;
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

  StoreHealth health() const;

  // Shared with the RocksDB event listener, which may outlive nothing but must not
  // reach into the Store while it is being destroyed.
  struct HealthState {
    mutable std::mutex mu;
    std::condition_variable cv;
    StoreHealth health;
    bool wal_failed = false;  // a WAL append failed since the last successful Resume()
    bool stopping = false;
  };

 private:
  Store() = default;
  void run_resumer(std::chrono::milliseconds interval);
  // Whether some column family's active memtable holds data: then DB::Resume()'s flush
  // switches to a new write-ahead log (with all of them empty it keeps the failed one).
  bool memtable_nonempty() const;
  // Writes a tiny key to the default column family so that a memtable holds data (see
  // memtable_nonempty()); after open and after each Resume().
  void write_wal_anchor();
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::shared_ptr<HealthState> health_;
  std::thread resumer_;
};

}  // namespace frugal::cache
