#include "cache/store.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

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
