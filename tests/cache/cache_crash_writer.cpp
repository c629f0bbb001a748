// cache_crash_writer DIR [START [COUNT]]
//
// Writes crash::entry_for(i) for i = START, START+1, ... through an ExactCache on the
// RocksDB store at DIR, forever (or COUNT entries). After every flushed batch it
// prints the highest index acknowledged as written ("acked N") on stdout, so a test
// can kill -9 it mid-write and then check on reopen that every readable entry
// decodes (valid checksum) and equals what was written, and that every acknowledged
// entry is present.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cache/exact_cache.h"
#include "crash_entries.h"

using namespace frugal::cache;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [START [COUNT]]\n", argv[0]);
    return 2;
  }
  const uint64_t start = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
  const uint64_t count = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : UINT64_MAX;
  auto store = Store::open(argv[1], {cache_column_family_spec()});
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message.c_str());
    return 1;
  }
  ExactCacheOptions options;
  options.memory_bytes = 1 << 20;
  auto cache = ExactCache::open(*store, options);
  if (!cache) {
    std::fprintf(stderr, "%s\n", cache.error().message.c_str());
    return 1;
  }
  constexpr uint64_t kBatch = 8;
  for (uint64_t n = 0; n < count; ++n) {
    const uint64_t i = start + n;
    (*cache)->store(crash::key_for(i), crash::entry_for(i), std::chrono::hours(1));
    if (n % kBatch == kBatch - 1) {
      (*cache)->flush();
      std::printf("acked %llu\n", static_cast<unsigned long long>(i));
      std::fflush(stdout);
    }
  }
  return 0;
}
