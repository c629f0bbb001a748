#include "cache/store.h"

#include <rocksdb/env.h>
#include <rocksdb/listener.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <filesystem>

#include "core/log.h"
#include "core/log_throttle.h"

namespace frugal::cache {
namespace {

constexpr const char* kWalAnchorKey = "frugal.store.wal_anchor";

// RocksDB's info log, WARN and above, as frugal log lines on stderr, at most 20 lines
// per 10 s: a DB that cannot write repeats itself.
class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), throttle_(std::chrono::seconds(10), 20) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    const auto admitted = throttle_.admit();
    if (!admitted) return;
    char msg[1024];
    std::vsnprintf(msg, sizeof msg, format, ap);
    std::string_view m(msg);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.remove_suffix(1);
    std::string line = "rocksdb: " + std::string(m);
    if (*admitted) line += " (" + std::to_string(*admitted) + " rocksdb log lines suppressed)";
    log::write(level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? log::Level::kError : log::Level::kWarn, line);
  }

 private:
  LogThrottle throttle_;
};

// Tracks RocksDB's background error state for health() and wakes the resumer.
class HealthListener final : public rocksdb::EventListener {
 public:
  explicit HealthListener(std::shared_ptr<Store::HealthState> state) : state_(std::move(state)) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* bg_error) override {
    bool was_writable;
    {
      std::lock_guard lk(state_->mu);
      if (reason == rocksdb::BackgroundErrorReason::kWriteCallback) state_->wal_failed = true;
      was_writable = state_->health.writable;
      state_->health.writable = false;
      state_->health.error = bg_error->ToString();
      ++state_->health.background_errors;
    }
    state_->cv.notify_all();
    if (was_writable)
      log::error("storage: writes to the data directory fail (" + bg_error->ToString() +
                         "); serving continues, cache fills are skipped and ledger rows are held in memory "
                         "until writes succeed again");
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status, bool* auto_recovery) override {
    *auto_recovery = false;  // the Store's resumer calls DB::Resume() (see store.h)
  }
  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    if (!info.new_bg_error.ok()) return;
    std::lock_guard lk(state_->mu);
    state_->wal_failed = false;  // the recovery flush switched to a new log
    state_->health.writable = true;
    state_->health.error.clear();
    ++state_->health.recoveries;  // with writable, so that a reader never sees one without the other
  }

 private:
  std::shared_ptr<Store::HealthState> state_;
};

}  // namespace

Error rocks_error(const rocksdb::Status& s, std::string_view what) {
  return make_error(ErrorKind::kInternal, "rocksdb " + std::string(what) + ": " + s.ToString());
}

Result<std::shared_ptr<Store>> Store::open(const std::string& dir,
                                           std::vector<ColumnFamilySpec> specs,
                                           const StoreOptions& options) {
  rocksdb::DBOptions db_options;
  if (options.env) db_options.env = options.env;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = options.max_background_jobs;
  db_options.max_total_wal_size = options.max_total_wal_size;
  db_options.keep_log_file_num = 4;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.info_log = std::make_shared<StderrLogger>();
  auto health = std::make_shared<HealthState>();
  db_options.listeners.push_back(std::make_shared<HealthListener>(health));
  // Flushes and compactions yield the CPU to request handling. At normal priority a
  // memtable flush (20-50 ms of CPU) on a 2-core machine held up the requests around it
  // by up to 2 ms, which set p99 at one connection (docs/PERFORMANCE.md, session 8).
  // Not idle priority: on a saturated machine flushes must still finish, or writes stall.
  // (The thread pools are the process's, shared by every DB it opens.)
  for (auto pool : {rocksdb::Env::Priority::HIGH, rocksdb::Env::Priority::LOW})
    (void)db_options.env->LowerThreadPoolCPUPriority(pool, rocksdb::CpuPriority::kLow);

  if (std::none_of(specs.begin(), specs.end(),
                   [](const auto& s) { return s.name == rocksdb::kDefaultColumnFamilyName; })) {
    specs.push_back({rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()});
  }
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_options, dir, &existing).ok()) {
    for (const auto& name : existing) {
      if (std::none_of(specs.begin(), specs.end(), [&](const auto& s) { return s.name == name; }))
        specs.push_back({name, rocksdb::ColumnFamilyOptions()});
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.reserve(specs.size());
  for (auto& s : specs) {
    if (s.options.write_buffer_size == rocksdb::ColumnFamilyOptions().write_buffer_size)
      s.options.write_buffer_size = options.write_buffer_size;
    descriptors.emplace_back(s.name, s.options);
  }

  std::shared_ptr<Store> store(new Store());
  store->dir_ = dir;
  rocksdb::DB* raw = nullptr;
  // RocksDB reports a missing directory at error level before creating it; a first start
  // is no error.
  if (options.create_if_missing) {
    std::error_code ignored;  // DB::Open reports what matters
    std::filesystem::create_directories(dir, ignored);
  }
  auto st = rocksdb::DB::Open(db_options, dir, descriptors, &store->handles_, &raw);
  if (!st.ok()) return rocks_error(st, "open " + dir);
  store->db_.reset(raw);
  store->health_ = std::move(health);
  store->write_wal_anchor();
  store->resumer_ = std::thread([p = store.get(), interval = options.resume_interval] { p->run_resumer(interval); });
  return store;
}

void Store::run_resumer(std::chrono::milliseconds interval) {
  std::unique_lock lk(health_->mu);
  for (;;) {
    health_->cv.wait(lk, [&] { return health_->stopping || !health_->health.writable; });
    if (health_->stopping) return;
    // Not at once: the failed write is still unwinding, and a full disk rarely frees
    // itself within milliseconds.
    if (health_->cv.wait_for(lk, interval, [&] { return health_->stopping; })) return;
    const bool wal_failed = health_->wal_failed;
    lk.unlock();  // the DB calls below take RocksDB's mutex, which calls the listener
    const bool stuck = wal_failed && !memtable_nonempty();
    lk.lock();
    if (stuck) {
      health_->health.needs_restart = true;
      health_->health.error += "; frugal must be restarted to write again (the write-ahead log failed while "
                               "every memtable was empty, which RocksDB 7.8 cannot resume from)";
      log::error("storage: " + health_->health.error);
      health_->cv.wait(lk, [&] { return health_->stopping; });
      return;
    }
    lk.unlock();
    // On success the listener (OnErrorRecoveryEnd, in RocksDB's order of events) marks
    // the Store writable again.
    const rocksdb::Status s = db_->Resume();
    if (s.ok()) {
      log::warn("storage: writes to the data directory succeed again");
      write_wal_anchor();
    }
    lk.lock();
  }
}

bool Store::memtable_nonempty() const {
  for (auto* h : handles_) {
    uint64_t n = 0;
    if (db_->GetIntProperty(h, "rocksdb.num-entries-active-mem-table", &n) && n > 0) return true;
  }
  return false;
}

void Store::write_wal_anchor() {
  const auto now = std::chrono::system_clock::now().time_since_epoch().count();
  (void)db_->Put(rocksdb::WriteOptions(), cf(rocksdb::kDefaultColumnFamilyName), kWalAnchorKey, std::to_string(now));
}

StoreHealth Store::health() const {
  std::lock_guard lk(health_->mu);
  return health_->health;
}

Store::~Store() {
  if (health_) {
    {
      std::lock_guard lk(health_->mu);
      health_->stopping = true;
    }
    health_->cv.notify_all();
  }
  if (resumer_.joinable()) resumer_.join();
  if (!db_) return;
  for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
  (void)db_->Close();
}

rocksdb::ColumnFamilyHandle* Store::cf(std::string_view name) const {
  for (auto* h : handles_)
    if (h->GetName() == name) return h;
  return nullptr;
}

Result<void> Store::flush() {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  auto st = db_->Flush(fo, handles_);
  if (!st.ok()) return rocks_error(st, "flush");
  st = db_->FlushWAL(/*sync=*/true);
  if (!st.ok()) return rocks_error(st, "sync wal");
  return {};
}

}  // namespace frugal::cache
