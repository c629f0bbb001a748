#pragma once
// A RocksDB file system that reports a full disk on demand: while `full` is set, every
// append to a file opened for writing fails with IOStatus::NoSpace (as ENOSPC would).
// Use as DBOptions::env = env() (tests only).
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <memory>

namespace frugal::test {

class FullFs : public rocksdb::FileSystemWrapper {
 public:
  FullFs() : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  static std::shared_ptr<FullFs> make() {
    auto fs = std::make_shared<FullFs>();
    // The env refers to the file system without owning it (the file system owns the
    // env: an owning pointer back would be a cycle that is never freed). A store opened
    // on env() must be closed before the last reference to the FullFs goes.
    fs->env_ = rocksdb::NewCompositeEnv(std::shared_ptr<rocksdb::FileSystem>(fs.get(), [](rocksdb::FileSystem*) {}));
    return fs;
  }
  const char* Name() const override { return "FrugalTestFullFs"; }
  rocksdb::Env* env() const { return env_.get(); }
  std::atomic<bool> full{false};

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r, rocksdb::IODebugContext* d) override {
    if (full) return rocksdb::IOStatus::NoSpace("test: disk full");
    auto s = target()->NewWritableFile(f, o, r, d);
    if (s.ok()) *r = std::make_unique<File>(std::move(*r), this);
    return s;
  }

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> f, const FullFs* fs)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(f)), fs_(fs) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* d) override {
      if (fs_->full) return rocksdb::IOStatus::NoSpace("test: disk full");
      return target()->Append(data, o, d);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v, rocksdb::IODebugContext* d) override {
      if (fs_->full) return rocksdb::IOStatus::NoSpace("test: disk full");
      return target()->Append(data, o, v, d);
    }

   private:
    const FullFs* fs_;
  };
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace frugal::test
