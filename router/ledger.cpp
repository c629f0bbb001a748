#include "router/ledger.h"

#include <rocksdb/merge_operator.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>

#include "policies/budget.h"

namespace frugal::router {
namespace {

// Sums rollup values (router/ledger_codec.h: v1 and v2 operands, the result v2).
class RollupSumOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    const std::string_view e = existing ? std::string_view(existing->data(), existing->size()) : std::string_view();
    auto merged = merge_totals(existing ? &e : nullptr, std::string_view(value.data(), value.size()));
    if (!merged) return false;
    *new_value = std::move(*merged);
    return true;
  }
  // The name is kept: a directory records it, and the operator reads every version.
  const char* Name() const override { return "frugal.RollupSum.v1"; }
};

// Flushes checksum every block: Debian's RocksDB computes CRC32C in software (it is built
// without SSE4.2), XXH3 is several times cheaper. Files keep their own checksum type, so
// existing data stays readable.
rocksdb::BlockBasedTableOptions cheap_checksums() {
  rocksdb::BlockBasedTableOptions t;
  t.checksum = rocksdb::kXXH3;
  return t;
}
}  // namespace

rocksdb::ColumnFamilyOptions ledger_cf_options() {
  rocksdb::ColumnFamilyOptions o;
  o.compression = rocksdb::kNoCompression;  // rows are small; keep writes cheap
  // Keys start with the request's start time, so each lands near the end of the
  // memtable: with a shared one-byte prefix RocksDB starts each insert from the previous
  // one. Rows finish out of start order, though, and callgrind still counts ~16 key
  // comparisons per insert (session 9); the hint saved ~1% of instructions (session 8).
  o.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(1));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(cheap_checksums()));
  return o;
}

rocksdb::ColumnFamilyOptions rollups_cf_options() {
  rocksdb::ColumnFamilyOptions o;
  o.merge_operator = std::make_shared<RollupSumOperator>();
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(cheap_checksums()));
  return o;
}

// ---- Ledger -----------------------------------------------------------------

struct Ledger::SyncWaiter {
  bool done = false;
  std::string error;  // empty: written
};

Ledger::Ledger(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* ledger_cf,
               rocksdb::ColumnFamilyHandle* rollups_cf, LedgerOptions options)
    : db_(db), ledger_cf_(ledger_cf), rollups_cf_(rollups_cf), options_(options) {
  if (options_.max_batch == 0) options_.max_batch = 1;
  if (options_.queue_capacity == 0) options_.queue_capacity = 1;
}

Result<std::unique_ptr<Ledger>> Ledger::open(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* ledger_cf,
                                             rocksdb::ColumnFamilyHandle* rollups_cf,
                                             LedgerOptions options) {
  if (!db || !ledger_cf || !rollups_cf)
    return make_error(ErrorKind::kInternal, "ledger: null DB or column family handle");
  std::unique_ptr<Ledger> l(new Ledger(db, ledger_cf, rollups_cf, options));
  l->writer_ = std::thread([p = l.get()] { p->run_writer(); });
  return l;
}

Result<std::unique_ptr<Ledger>> Ledger::open_standalone(const std::string& path, LedgerOptions options) {
  rocksdb::DBOptions dbo;
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs{
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kLedgerCf, ledger_cf_options()},
      {kRollupsCf, rollups_cf_options()}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(dbo, path, cfs, &handles, &raw);
  if (!s.ok()) return make_error(ErrorKind::kInternal, "ledger: cannot open " + path + ": " + s.ToString());
  std::unique_ptr<Ledger> l(new Ledger(raw, handles[1], handles[2], options));
  l->owned_db_.reset(raw);
  l->owned_handles_ = std::move(handles);
  l->writer_ = std::thread([p = l.get()] { p->run_writer(); });
  return l;
}

Result<std::unique_ptr<Ledger>> Ledger::open_read_only(const std::string& path) {
  std::vector<std::string> names;
  rocksdb::DBOptions dbo;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(dbo, path, &names);
  if (!s.ok()) return make_error(ErrorKind::kNotFound, "ledger: cannot open " + path + ": " + s.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names)
    cfs.emplace_back(n, n == kRollupsCf ? rollups_cf_options() : n == kLedgerCf ? ledger_cf_options()
                                                                                 : rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(dbo, path, cfs, &handles, &raw);
  if (!s.ok()) return make_error(ErrorKind::kInternal, "ledger: cannot open " + path + " read-only: " + s.ToString());
  rocksdb::ColumnFamilyHandle* ledger_cf = nullptr;
  rocksdb::ColumnFamilyHandle* rollups_cf = nullptr;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == kLedgerCf) ledger_cf = handles[i];
    if (names[i] == kRollupsCf) rollups_cf = handles[i];
  }
  std::unique_ptr<Ledger> l(new Ledger(raw, ledger_cf, rollups_cf, LedgerOptions{}));
  l->owned_db_.reset(raw);
  l->owned_handles_ = std::move(handles);
  l->closing_ = true;  // no writer thread: appends are refused
  if (!ledger_cf || !rollups_cf)
    return make_error(ErrorKind::kNotFound, "ledger: " + path + " has no ledger (column families '" +
                                                std::string(kLedgerCf) + "' and '" + kRollupsCf + "')");
  return l;
}

Ledger::~Ledger() {
  close();
  if (owned_db_) {
    for (auto* h : owned_handles_) owned_db_->DestroyColumnFamilyHandle(h);
    owned_db_->Close();
  }
}

uint64_t Ledger::enqueue_locked(LedgerRecord record, std::shared_ptr<SyncWaiter> waiter,
                                std::function<void(bool)> on_written) {
  const uint64_t seq = ++next_seq_;
  queue_.push_back(Pending{std::move(record), seq, std::move(waiter), std::move(on_written)});
  ++stats_.appended;
  return seq;
}

bool Ledger::append(LedgerRecord record) {
  {
    std::lock_guard lock(mu_);
    if (closing_ || queue_.size() >= options_.queue_capacity) {
      ++stats_.dropped;
      return false;
    }
    enqueue_locked(std::move(record), nullptr);
  }
  work_cv_.notify_one();
  return true;
}

bool Ledger::append(LedgerRecord record, std::function<void(bool ok)> on_written) {
  {
    std::lock_guard lock(mu_);
    if (closing_ || queue_.size() >= options_.queue_capacity) {
      ++stats_.dropped;
      if (on_written) on_written(false);
      return false;
    }
    enqueue_locked(std::move(record), nullptr, std::move(on_written));
  }
  work_cv_.notify_one();
  return true;
}

bool Ledger::append_durable(LedgerRecord record, const std::function<OnWritten()>& make_on_written) {
  return append_durable(std::span(&record, 1), make_on_written);
}

bool Ledger::append_durable(std::span<LedgerRecord> records, const std::function<OnWritten()>& make_on_written) {
  if (records.empty()) return true;
  bool inline_ok = false;
  {
    std::lock_guard lock(mu_);
    inline_ok = !closing_ && !writing_ && queue_.empty() && held_.empty() && !options_.sync &&
                options_.write_delay_us == 0;
    if (inline_ok) ++inline_writers_;
  }
  // Queued behind the writer: in order, with the callback on the last row (the writer
  // takes the queue in order, so it reports the whole span). Past the queue bound: the
  // rows must not be lost.
  const auto enqueue_all_locked = [&] {  // false: closed, nothing queued
    if (closing_) {
      stats_.dropped += records.size();
      return false;
    }
    for (size_t i = 0; i + 1 < records.size(); ++i) enqueue_locked(std::move(records[i]), nullptr);
    enqueue_locked(std::move(records.back()), nullptr, make_on_written());
    return true;
  };
  const auto queued = [&](bool ok) {
    if (ok) work_cv_.notify_one();
    else if (OnWritten on_written = make_on_written()) on_written(false);
    return false;
  };
  if (!inline_ok) {
    bool ok;
    {
      std::lock_guard lock(mu_);
      ok = enqueue_all_locked();
    }
    return queued(ok);
  }
  rocksdb::WriteBatch wb;
  std::vector<const LedgerRecord*> ptrs;
  ptrs.reserve(records.size());
  for (const LedgerRecord& r : records) ptrs.push_back(&r);
  add_rows(wb, ptrs);
  rocksdb::WriteOptions wo;
  wo.no_slowdown = true;  // never stall an I/O thread: the writer takes it instead
  const rocksdb::Status s = db_->Write(wo, &wb);
  bool requeued = false;
  {
    std::lock_guard lock(mu_);
    --inline_writers_;
    // RocksDB would have stalled: the writer writes them (queued before close() can
    // see this call gone).
    if (s.IsIncomplete()) requeued = enqueue_all_locked();
    else {
      stats_.appended += records.size();
      ++stats_.batches;
      if (s.ok()) {
        stats_.written += records.size();
        stats_.written_inline += records.size();
      } else {
        ++error_count_;
        stats_.write_errors += records.size();
        last_error_ = "ledger write failed: " + s.ToString();
        for (LedgerRecord& r : records) hold_locked(std::move(r));
        next_retry_ = std::chrono::steady_clock::now() + std::chrono::microseconds(options_.retry_interval_us);
      }
    }
  }
  done_cv_.notify_all();  // close() waits for inline writers
  if (!s.ok() && !s.IsIncomplete()) work_cv_.notify_one();  // the writer retries the held rows
  if (s.IsIncomplete()) return queued(requeued);
  if (!s.ok()) {
    if (OnWritten on_written = make_on_written()) on_written(false);
    return false;
  }
  return true;
}

void Ledger::add_rows(rocksdb::WriteBatch& wb, std::span<const LedgerRecord* const> records) const {
  // Rows are Put one by one; rollup deltas are summed per key first, so a batch of
  // requests of the same hour, type, route, model, key and team is one Merge.
  // One key, value and rollup-key buffer for the batch (wb copies what it is given).
  std::unordered_map<std::string, CostTotals> rollups;
  std::string key, value, rollup_key;
  for (const LedgerRecord* r : records) {
    key.clear();
    append_ledger_key(key, r->wall_us, r->request_id);
    value.clear();
    append_record(value, *r);
    wb.Put(ledger_cf_, key, value);
    for (const auto& [model, t] : model_deltas(*r)) {
      assign_rollup_key(rollup_key, floor_hour(r->wall_us), r->request_type, r->route, *model, r->key_id, r->team);
      rollups[rollup_key] += t;
    }
  }
  for (const auto& [k, t] : rollups) wb.Merge(rollups_cf_, k, encode_totals(t));
}

Result<void> Ledger::append_sync(LedgerRecord record) {
  auto waiter = std::make_shared<SyncWaiter>();
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return closing_ || queue_.size() < options_.queue_capacity; });
  if (closing_) return make_error(ErrorKind::kUnavailable, "ledger is closed");
  enqueue_locked(std::move(record), waiter);
  work_cv_.notify_one();
  done_cv_.wait(lock, [&] { return waiter->done; });
  if (!waiter->error.empty()) return make_error(ErrorKind::kInternal, waiter->error);
  return {};
}

Result<void> Ledger::flush() {
  std::unique_lock lock(mu_);
  const uint64_t target = next_seq_;
  const uint64_t errors_before = error_count_;
  work_cv_.notify_one();
  done_cv_.wait(lock, [&] { return written_seq_ >= target; });
  if (error_count_ != errors_before) return make_error(ErrorKind::kInternal, last_error_);
  return {};
}

void Ledger::close() {
  {
    std::unique_lock lock(mu_);
    if (closing_ && !writer_.joinable()) return;
    closing_ = true;
    // An inline write that RocksDB refuses is queued: let those land before the
    // writer drains and stops.
    done_cv_.wait(lock, [&] { return inline_writers_ == 0; });
  }
  work_cv_.notify_one();
  done_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void Ledger::hold_locked(LedgerRecord&& record) {
  if (held_.size() >= options_.held_capacity) {
    ++stats_.dropped;
    return;
  }
  held_.push_back(std::move(record));
}

void Ledger::run_writer() {
  using SteadyClock = std::chrono::steady_clock;
  std::vector<Pending> batch;
  std::vector<LedgerRecord> retry;  // held rows written again
  std::vector<const LedgerRecord*> records;
  rocksdb::WriteBatch wb;
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  const auto retry_interval = std::chrono::microseconds(std::max<int64_t>(options_.retry_interval_us, 1'000));
  for (;;) {
    batch.clear();
    retry.clear();
    {
      std::unique_lock lock(mu_);
      const auto retry_due = [&] { return !held_.empty() && (closing_ || SteadyClock::now() >= next_retry_); };
      while (!retry_due() && queue_.empty()) {
        if (closing_) return;  // drained, nothing held
        if (held_.empty()) work_cv_.wait(lock);
        else work_cv_.wait_until(lock, next_retry_);
      }
      if (retry_due()) {
        const size_t n = std::min(held_.size(), options_.max_batch);
        for (size_t i = 0; i < n; ++i) {
          retry.push_back(std::move(held_.front()));
          held_.pop_front();
        }
        retrying_ = n;
      } else {
        // No pause to gather more: while this batch is written the next one queues
        // (group commit), and a pause would leave the cores idle with every request of
        // a closed loop waiting here.
        const size_t n = std::min(queue_.size(), options_.max_batch);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      writing_ = true;
    }
    done_cv_.notify_all();  // space freed for blocked append_sync callers
    wb.Clear();
    records.clear();
    for (const auto& r : retry) records.push_back(&r);
    for (const auto& p : batch) records.push_back(&p.record);
    add_rows(wb, records);
    if (options_.write_delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(options_.write_delay_us));
    const rocksdb::Status s = db_->Write(wo, &wb);
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      retrying_ = 0;
      ++stats_.batches;
      const size_t n = records.size();
      if (s.ok()) {
        stats_.written += n;
        stats_.retried += retry.size();
        if (!held_.empty()) next_retry_ = SteadyClock::now();  // the disk takes writes again
      } else {
        ++error_count_;
        stats_.write_errors += n;
        last_error_ = "ledger write failed: " + s.ToString();
        if (closing_) {
          stats_.dropped += n;  // nothing will retry them
        } else {
          // Retried rows go back in front, in order; new ones join behind.
          for (auto it = retry.rbegin(); it != retry.rend(); ++it) held_.push_front(std::move(*it));
          for (auto& p : batch) hold_locked(std::move(p.record));
          next_retry_ = SteadyClock::now() + retry_interval;
        }
      }
      for (auto& p : batch) {
        if (p.waiter) {
          p.waiter->done = true;
          if (!s.ok()) p.waiter->error = last_error_;
        }
      }
      if (!batch.empty()) written_seq_ = batch.back().seq;
    }
    done_cv_.notify_all();
    for (auto& p : batch)
      if (p.on_written) p.on_written(s.ok());
  }
}

Result<std::vector<LedgerRecord>> Ledger::scan(int64_t from_us, int64_t to_us, size_t limit) const {
  std::vector<LedgerRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), ledger_cf_));
  const std::string start = ledger_key(from_us, "");
  for (it->Seek(start); it->Valid() && out.size() < limit; it->Next()) {
    const rocksdb::Slice k = it->key();
    if (k.size() < 8 || ledger_key_time(std::string_view(k.data(), 8)) >= to_us) break;
    auto r = decode_record(std::string_view(it->value().data(), it->value().size()));
    if (!r) return std::move(r).error();
    out.push_back(std::move(*r));
  }
  if (!it->status().ok()) return make_error(ErrorKind::kInternal, "ledger scan: " + it->status().ToString());
  return out;
}

Result<CostReport> Ledger::query(int64_t from_us, int64_t to_us, std::span<const GroupBy> group_by) const {
  CostReport rep;
  rep.from_us = from_us;
  rep.to_us = to_us;
  rep.group_by.assign(group_by.begin(), group_by.end());
  std::map<std::vector<std::string>, CostTotals> groups;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), rollups_cf_));
  const std::string start = rollup_seek_key(from_us);
  std::vector<std::string> g;
  for (it->Seek(start); it->Valid(); it->Next()) {
    auto k = decode_rollup_key(std::string_view(it->key().data(), it->key().size()));
    if (!k) return make_error(ErrorKind::kInternal, "ledger query: malformed rollup key");
    if (k->hour_us >= to_us) break;
    const auto t = decode_totals(std::string_view(it->value().data(), it->value().size()));
    if (!t) return make_error(ErrorKind::kInternal, "ledger query: malformed rollup value");
    g.clear();
    for (GroupBy gb : group_by) {
      switch (gb) {
        case GroupBy::kHour: g.push_back(policies::format_utc(k->hour_us)); break;
        case GroupBy::kRequestType: g.push_back(k->request_type); break;
        case GroupBy::kRoute: g.push_back(k->route); break;
        case GroupBy::kModel: g.push_back(k->model); break;
        case GroupBy::kKey: g.push_back(k->key); break;
        case GroupBy::kTeam: g.push_back(k->team); break;
      }
    }
    groups[g] += *t;
    rep.totals += *t;
  }
  if (!it->status().ok()) return make_error(ErrorKind::kInternal, "ledger query: " + it->status().ToString());
  for (auto& [key, t] : groups) rep.rows.push_back(CostRow{key, t});
  return rep;
}

LedgerStats Ledger::stats() const {
  std::lock_guard lock(mu_);
  LedgerStats s = stats_;
  s.held = held_.size() + retrying_;
  return s;
}

Result<void> restore_budgets(const Ledger& ledger, policies::BudgetTracker& tracker, int64_t now_us) {
  if (tracker.empty()) return {};
  // One query per hour of the longest current window (at most 744 for a month): the
  // hour is what restore() needs to place spend in a window.
  const int64_t from = floor_hour(tracker.restore_from_us());
  const GroupBy scope[] = {GroupBy::kTeam, GroupBy::kKey, GroupBy::kRequestType};
  for (int64_t h = from; h <= now_us; h += kLedgerHourUs) {
    auto rep = ledger.query(h, h + kLedgerHourUs, scope);
    if (!rep) return std::move(rep).error();
    for (const auto& row : rep->rows)
      tracker.restore(policies::BudgetFacts{row.group[0], row.group[1], row.group[2]}, h, row.totals.cost);
  }
  return {};
}

}  // namespace frugal::router
