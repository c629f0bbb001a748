#pragma once
// The cost ledger: one row per request in RocksDB column family `ledger` (keyed by
// time), and hourly rollups in column family `rollups` maintained by an associative
// merge operator (sums), queried for cost reports. The stored forms are
// router/ledger_codec.h; this is the writer and the queries.
//
// Threads: append() is called from any I/O thread; it moves the record into a bounded
// queue under a mutex and returns (no encoding, no RocksDB call on the caller's
// thread). One writer thread drains the queue in batches: for each record, a Put of
// the row and a Merge per rollup delta, all in one WriteBatch (so row and rollups are
// atomic together), written with the WAL on.
//
// Durability — exactly:
//  * A row is durable against a process crash (kill -9) once the WriteBatch holding it
//    has been written: the WAL record is then in the OS page cache and RocksDB replays
//    it on open. append_sync() returns OK only after that point; flush() returns OK
//    only after every row appended before the flush() call reached that point.
//  * A plain append() that returned true is NOT yet durable: it may be lost if the
//    process dies before the writer's next batch (typically < 1 ms later).
//  * Against an OS crash or power loss, set LedgerOptions::sync = true: each batch
//    write then fsyncs the WAL (group commit: one fsync per batch, shared by every
//    append_sync waiting in it).
//  * close() (and the destructor) drain the queue and write everything before returning.
//  * A write that fails (a full disk: RocksDB refuses writes until cache::Store resumes
//    it) does not lose its rows: they are held in memory, in order, and the writer
//    retries them every LedgerOptions::retry_interval_us (and at once after any write
//    that succeeds) until they are written. Their on_written/append_sync report false
//    at the first failure: the rows are then NOT durable, so a caller that waits for
//    durability (gateway/ledger_lane.h) answers anyway, and the rows become durable
//    when the disk has room again. Held rows are lost only if the process dies first,
//    if more than LedgerOptions::held_capacity rows are held (the newest are dropped,
//    counted in LedgerStats::dropped), or if close() cannot write them either.
//
// append_durable() is the cheap way to wait for durability: when the writer is idle,
// the queue empty and no fsync/fault injection is configured, the calling thread writes
// the row itself (one WriteBatch, `no_slowdown`: a write that would stall RocksDB is
// handed to the writer instead). A waiting caller then pays a WAL write(2) into the
// page cache instead of two thread wake-ups (~10 µs against 50–100 µs on a VM).
//
// Ownership: open() borrows the DB and column family handles, which must outlive the
// Ledger. open_standalone() opens and owns its own DB (tests, the CLI).
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/money.h"
#include "core/usage.h"
#include "router/costs.h"
#include "router/ledger_codec.h"
#include "router/ledger_json.h"
#include "router/ledger_record.h"

namespace frugal::policies {
class BudgetTracker;
}

namespace frugal::router {

inline constexpr const char* kLedgerCf = "ledger";
inline constexpr const char* kRollupsCf = "rollups";

// Column family options to register in the shared store (cache/store.h).
rocksdb::ColumnFamilyOptions ledger_cf_options();
rocksdb::ColumnFamilyOptions rollups_cf_options();  // with the summing merge operator

struct LedgerOptions {
  size_t queue_capacity = 65'536;  // append() beyond this drops the record (counted)
  size_t max_batch = 1'024;        // records per WriteBatch
  bool sync = false;               // fsync the WAL per batch (power-loss durability)
  // Fault injection for crash tests: the writer sleeps this long before each batch,
  // widening the window in which a row is queued but not yet written. 0 in production.
  int64_t write_delay_us = 0;
  size_t held_capacity = 65'536;      // rows kept for retry after failed writes
  int64_t retry_interval_us = 500'000;  // between retries of held rows
};

struct LedgerStats {
  uint64_t appended = 0;
  uint64_t written = 0;
  uint64_t dropped = 0;  // lost: queue full, held rows past held_capacity, or unwritable at close
  uint64_t write_errors = 0;  // row writes that failed (a held row counts once per attempt)
  uint64_t held = 0;          // rows waiting for a retry now (not durable)
  uint64_t retried = 0;       // held rows written later (in `written`)
  uint64_t batches = 0;
  uint64_t written_inline = 0;  // by append_durable on the caller's thread (in `written`)
};

class Ledger {
 public:
  static Result<std::unique_ptr<Ledger>> open(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* ledger_cf,
                                              rocksdb::ColumnFamilyHandle* rollups_cf,
                                              LedgerOptions options = {});
  static Result<std::unique_ptr<Ledger>> open_standalone(const std::string& path,
                                                         LedgerOptions options = {});
  // Opens the RocksDB directory `path` (every column family it has) read-only, for
  // scan() and query() while another process may own it (`frugal costs --data-dir`):
  // it sees what was written (WAL included) when it was opened. append*() fail.
  static Result<std::unique_ptr<Ledger>> open_read_only(const std::string& path);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Queues the record; false when the queue is full or the ledger is closed (dropped).
  bool append(LedgerRecord record);
  // Queues the record; `on_written(ok)` runs once on the writer thread after the
  // record's batch was written (ok: durable against kill -9, see above) or failed, or
  // inline with false when the record is dropped. It must be cheap and must not call
  // back into the ledger (post to your own executor). Returns false when dropped.
  bool append(LedgerRecord record, std::function<void(bool ok)> on_written);
  // Writes the record on the calling thread when that cannot block (see above) and
  // returns true: the row is durable and make_on_written is never called (the caller
  // builds no wait machinery). Otherwise behaves as append(record, make_on_written())
  // and returns false: that callback reports the outcome (it may already have run, with
  // false, when the row was dropped or the write failed).
  using OnWritten = std::function<void(bool ok)>;
  bool append_durable(LedgerRecord record, const std::function<OnWritten()>& make_on_written);
  // The same for several rows in one WriteBatch (moved from); when they are queued
  // instead, the one callback reports them all.
  bool append_durable(std::span<LedgerRecord> records, const std::function<OnWritten()>& make_on_written);
  // Queues the record and waits until its batch is written (see durability above).
  Result<void> append_sync(LedgerRecord record);
  // Waits until everything appended before this call is written.
  Result<void> flush();
  // Drains, writes and stops the writer thread. Idempotent.
  void close();

  // Rows with from_us <= wall_us < to_us, in time order, at most `limit`.
  Result<std::vector<LedgerRecord>> scan(int64_t from_us, int64_t to_us, size_t limit) const;
  // Rollups of hours starting in [floor_hour(from_us), to_us), grouped.
  Result<CostReport> query(int64_t from_us, int64_t to_us, std::span<const GroupBy> group_by) const;

  LedgerStats stats() const;

 private:
  struct SyncWaiter;
  struct Pending {
    LedgerRecord record;
    uint64_t seq = 0;
    std::shared_ptr<SyncWaiter> waiter;
    std::function<void(bool)> on_written;
  };
  Ledger(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* ledger_cf, rocksdb::ColumnFamilyHandle* rollups_cf,
         LedgerOptions options);
  void run_writer();
  void add_rows(rocksdb::WriteBatch& wb, std::span<const LedgerRecord* const> records) const;
  uint64_t enqueue_locked(LedgerRecord record, std::shared_ptr<SyncWaiter> waiter,
                          std::function<void(bool)> on_written = {});
  // Rows whose write failed: kept for retry up to held_capacity (newest dropped beyond).
  void hold_locked(LedgerRecord&& record);

  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* ledger_cf_;
  rocksdb::ColumnFamilyHandle* rollups_cf_;
  LedgerOptions options_;
  // Owned only by open_standalone().
  std::vector<rocksdb::ColumnFamilyHandle*> owned_handles_;
  std::unique_ptr<rocksdb::DB> owned_db_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // writer: queue non-empty or closing
  std::condition_variable done_cv_;   // waiters: written_seq_ advanced / space freed
  std::deque<Pending> queue_;
  std::deque<LedgerRecord> held_;     // failed writes, in order, retried by the writer
  size_t retrying_ = 0;               // held rows the writer is writing now
  std::chrono::steady_clock::time_point next_retry_{};
  uint64_t next_seq_ = 0;             // last sequence number handed out
  uint64_t written_seq_ = 0;          // every seq <= this has been attempted
  uint64_t error_count_ = 0;
  std::string last_error_;
  bool closing_ = false;
  bool writing_ = false;              // the writer thread is inside a batch
  int inline_writers_ = 0;            // append_durable() calls inside db_->Write
  LedgerStats stats_;
  std::thread writer_;
};

// Rebuilds a BudgetTracker's current windows from the rollups (call once on start,
// before serving): hour-granular, exact for hour/day/month budgets.
Result<void> restore_budgets(const Ledger& ledger, policies::BudgetTracker& tracker, int64_t now_us);

}  // namespace frugal::router
