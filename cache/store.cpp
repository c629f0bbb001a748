#include "cache/store.h"

#include <algorithm>

namespace frugal::cache {

Error rocks_error(const rocksdb::Status& s, std::string_view what) {
  return make_error(ErrorKind::kInternal, "rocksdb " + std::string(what) + ": " + s.ToString());
}

Result<std::shared_ptr<Store>> Store::open(const std::string& dir,
                                           std::vector<ColumnFamilySpec> specs,
                                           const StoreOptions& options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = options.max_background_jobs;
  db_options.max_total_wal_size = options.max_total_wal_size;
  db_options.keep_log_file_num = 4;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
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
  auto st = rocksdb::DB::Open(db_options, dir, descriptors, &store->handles_, &raw);
  if (!st.ok()) return rocks_error(st, "open " + dir);
  store->db_.reset(raw);
  return store;
}

Store::~Store() {
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
