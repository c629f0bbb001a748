#include "cache/asio_lookup.h"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <thread>

#include "test_util.h"

namespace asio = boost::asio;
using namespace frugal::cache;
using frugal::cache::test::TempDir;

namespace {

asio::awaitable<void> lookup_twice(ExactCache& cache, std::thread::id io_thread, int& checks) {
  auto ex = co_await asio::this_coro::executor;
  // Miss in memory: the RocksDB read runs on the pool, the coroutine resumes on ours.
  LookupResult disk = co_await async_lookup(cache, hash128("k"), ex, asio::use_awaitable);
  CHECK(std::this_thread::get_id() == io_thread);
  CHECK(disk.source == CacheSource::kDisk);
  REQUIRE(disk.hit());
  CHECK(disk.entry->completion_json == "{}");
  ++checks;
  LookupResult mem = co_await async_lookup(cache, hash128("k"), ex, asio::use_awaitable);
  CHECK(std::this_thread::get_id() == io_thread);
  CHECK(mem.source == CacheSource::kMemory);
  LookupResult miss = co_await async_lookup(cache, hash128("absent"), ex, asio::use_awaitable);
  CHECK_FALSE(miss.hit());
  ++checks;
}

}  // namespace

TEST_CASE("async_lookup resumes coroutines on their own executor for disk hits, memory hits and misses") {
  TempDir dir;
  auto store = Store::open(dir.path(), {cache_column_family_spec()});
  REQUIRE(store.ok());
  {
    auto writer = ExactCache::open(*store);
    REQUIRE(writer.ok());
    CachedResponse e;
    e.completion_json = "{}";
    (*writer)->store(hash128("k"), e, std::chrono::hours(1));
  }  // flushed to RocksDB; the next cache starts with an empty memory tier
  auto cache = ExactCache::open(*store);
  REQUIRE(cache.ok());
  asio::io_context io;
  int checks = 0;
  asio::co_spawn(io, lookup_twice(**cache, std::this_thread::get_id(), checks), asio::detached);
  io.run();  // returns only once the coroutine is done: the pending read keeps it alive
  CHECK(checks == 2);
}
