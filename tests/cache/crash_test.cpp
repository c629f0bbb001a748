// kill -9 a writer mid-write, reopen, and check that nothing torn is ever served.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cache/exact_cache.h"
#include "crash_entries.h"
#include "test_util.h"

using namespace frugal::cache;
using frugal::cache::test::TempDir;

namespace {

// Starts the writer at `start`, reads its acks until one is >= `until`, SIGKILLs it.
// Returns the highest acknowledged index.
uint64_t run_and_kill(const std::string& dir, uint64_t start, uint64_t until) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const std::string start_arg = std::to_string(start);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(FRUGAL_CACHE_CRASH_WRITER, "cache_crash_writer", dir.c_str(), start_arg.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  FILE* out = fdopen(fds[0], "r");
  REQUIRE(out != nullptr);
  unsigned long long acked = 0;
  bool any = false;
  char line[128];
  while (std::fgets(line, sizeof line, out)) {
    if (std::sscanf(line, "acked %llu", &acked) == 1) any = true;
    if (any && acked >= until) break;
  }
  kill(pid, SIGKILL);  // mid-write: the writer never pauses between batches
  int status = 0;
  waitpid(pid, &status, 0);
  std::fclose(out);
  REQUIRE(any);
  CHECK(acked >= until);  // the writer did not die on its own first
  CHECK(WIFSIGNALED(status));
  return acked;
}

// Every entry on disk decodes, sits under its own key and equals what was written.
// Returns how many there are.
size_t verify_all(Store& store) {
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(rocksdb::ReadOptions(), store.cf("cache")));
  size_t n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto e = decode_entry(std::string_view(it->value().data(), it->value().size()));
    REQUIRE(e.ok());
    const uint64_t i = std::stoull(e->model.substr(6));  // "crash-<i>"
    CHECK(it->key().ToString() == crash::key_for(i).to_bytes());
    CHECK(crash::matches(i, *e));
    ++n;
  }
  REQUIRE(it->status().ok());
  return n;
}

}  // namespace

TEST_CASE("entries written by a writer killed with SIGKILL are intact or absent, never torn") {
  TempDir dir;
  const uint64_t first = run_and_kill(dir.path(), 0, 150);
  // A second crash on top of a recovered database.
  const uint64_t second = run_and_kill(dir.path(), 100000, 100000 + 150);

  auto store = Store::open(dir.path(), {cache_column_family_spec()});
  REQUIRE(store.ok());
  const size_t n = verify_all(**store);
  CHECK(n >= first + 1 + (second - 100000) + 1);  // every acknowledged entry survived

  // And through the cache's own read path.
  auto cache = ExactCache::open(*store);
  REQUIRE(cache.ok());
  for (uint64_t i : {uint64_t{0}, first, uint64_t{100000}, second}) {
    std::shared_ptr<const CachedResponse> got;
    bool done = false;
    std::mutex mu;
    std::condition_variable cv;
    (*cache)->lookup(crash::key_for(i), [&](LookupResult r) {
      std::lock_guard lk(mu);
      got = r.entry;
      done = true;
      cv.notify_one();
    });
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return done; });
    REQUIRE(got);
    CHECK(crash::matches(i, *got));
  }
}
