#include "cache/store.h"

#include <doctest/doctest.h>

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
