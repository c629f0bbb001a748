#include "cache/store.h"

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"
#include "tests/support/full_fs.h"

using namespace frugal::cache;
using frugal::cache::test::TempDir;

TEST_CASE("Store creates missing column families and reopens with them") {
  TempDir dir;
  {
    auto store = Store::open(dir.path(), {{"cache", {}}, {"ledger", {}}});
    REQUIRE(store.ok());
    CHECK((*store)->cf("cache") != nullptr);
    CHECK((*store)->cf("ledger") != nullptr);
    CHECK((*store)->cf("default") != nullptr);
    CHECK((*store)->cf("nope") == nullptr);
    auto* db = (*store)->db();
    REQUIRE(db->Put(rocksdb::WriteOptions(), (*store)->cf("ledger"), "k", "v").ok());
    CHECK((*store)->flush().ok());
  }
  // A process that only knows about `cache` still opens a database holding `ledger`.
  auto store = Store::open(dir.path(), {{"cache", {}}});
  REQUIRE(store.ok());
  REQUIRE((*store)->cf("ledger") != nullptr);
  std::string v;
  REQUIRE((*store)->db()->Get(rocksdb::ReadOptions(), (*store)->cf("ledger"), "k", &v).ok());
  CHECK(v == "v");
}

TEST_CASE("Store::open reports RocksDB errors as frugal errors") {
  TempDir dir;
  auto first = Store::open(dir.path(), {{"cache", {}}});
  REQUIRE(first.ok());
  auto second = Store::open(dir.path(), {{"cache", {}}});  // the LOCK file is held
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().kind == frugal::ErrorKind::kInternal);
  CHECK(second.error().message.find("rocksdb open") != std::string::npos);
}

TEST_CASE("RocksDB's flush threads run at nice 19: they yield the CPU to requests") {
  TempDir dir;
  auto store = Store::open(dir.path(), {{"cache", {}}});
  REQUIRE(store.ok());
  REQUIRE((*store)->db()->Put(rocksdb::WriteOptions(), (*store)->cf("cache"), "k", "v").ok());
  REQUIRE((*store)->flush().ok());  // runs on the flush pool ("rocksdb:high")
  int flush_threads = 0;
  for (const auto& t : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(t.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name != "rocksdb:high") continue;
    ++flush_threads;
    std::ifstream stat(t.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // Fields after the parenthesised name: state is field 3, nice field 19.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::vector<std::string> f{std::istream_iterator<std::string>(rest), {}};
    REQUIRE(f.size() > 16);
    CHECK(f[16] == "19");
  }
  CHECK(flush_threads >= 1);
}

TEST_CASE("a full disk makes the Store unwritable, and it resumes by itself once writes succeed") {
  TempDir dir;
  auto fs = frugal::test::FullFs::make();
  StoreOptions o;
  o.env = fs->env();
  o.resume_interval = std::chrono::milliseconds(20);
  auto store = Store::open(dir.path(), {{"c", {}}}, o);
  REQUIRE(store.ok());
  auto* db = (*store)->db();
  auto* cf = (*store)->cf("c");
  REQUIRE(db->Put(rocksdb::WriteOptions(), cf, "a", "1").ok());
  CHECK((*store)->health().writable);

  fs->full = true;
  CHECK_FALSE(db->Put(rocksdb::WriteOptions(), cf, "b", "2").ok());
  StoreHealth h = (*store)->health();
  CHECK_FALSE(h.writable);
  CHECK(h.error.find("disk full") != std::string::npos);
  CHECK(h.background_errors >= 1);
  // While the disk stays full, writes keep failing cleanly (the resumer's tries fail).
  for (int i = 0; i < 5; ++i) CHECK_FALSE(db->Put(rocksdb::WriteOptions(), cf, "c", "3").ok());
  std::string v;
  CHECK(db->Get(rocksdb::ReadOptions(), cf, "a", &v).ok());  // reads still work
  CHECK_FALSE((*store)->health().writable);

  fs->full = false;
  bool writable = false;
  for (int i = 0; i < 1000 && !writable; ++i) {  // bounded: 10 s
    writable = (*store)->health().writable;
    if (!writable) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(writable);
  CHECK((*store)->health().recoveries >= 1);
  CHECK((*store)->health().error.empty());
  CHECK(db->Put(rocksdb::WriteOptions(), cf, "d", "4").ok());
  CHECK(db->Get(rocksdb::ReadOptions(), cf, "a", &v).ok());
  CHECK(v == "1");
  // RocksDB's info log goes to stderr, not to a file that a full disk would break.
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path(dir.path()) / "LOG"));
}

TEST_CASE("a WAL failure with every memtable empty is not resumed onto the failed log: it asks for a restart") {
  TempDir dir;
  auto fs = frugal::test::FullFs::make();
  StoreOptions o;
  o.env = fs->env();
  o.resume_interval = std::chrono::milliseconds(20);
  {
    auto store = Store::open(dir.path(), {{"c", {}}}, o);
    REQUIRE(store.ok());
    auto* db = (*store)->db();
    auto* cf = (*store)->cf("c");
    // Empty every memtable (open wrote the anchor key to one).
    REQUIRE(db->Flush(rocksdb::FlushOptions(), (*store)->cf("default")).ok());
    fs->full = true;
    CHECK_FALSE(db->Put(rocksdb::WriteOptions(), cf, "a", "1").ok());
    fs->full = false;
    bool gave_up = false;
    for (int i = 0; i < 1000 && !gave_up; ++i) {  // bounded: 10 s
      gave_up = (*store)->health().needs_restart;
      if (!gave_up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(gave_up);
    CHECK_FALSE((*store)->health().writable);
    CHECK((*store)->health().error.find("must be restarted") != std::string::npos);
    // Writes keep failing cleanly; RocksDB would abort on the failed log if resumed.
    CHECK_FALSE(db->Put(rocksdb::WriteOptions(), cf, "b", "2").ok());
  }
  // The restart opens cleanly and writes.
  auto store = Store::open(dir.path(), {{"c", {}}}, o);
  REQUIRE(store.ok());
  CHECK((*store)->health().writable);
  CHECK((*store)->db()->Put(rocksdb::WriteOptions(), (*store)->cf("c"), "c", "3").ok());
}
