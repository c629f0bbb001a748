#include <doctest/doctest.h>

#include <numeric>
#include <random>

#include "backends/engine/forward.h"
#include "backends/engine/kv_cache.h"
#include "backends/engine/thread_pool.h"
#include "test_models.h"

using namespace frugal::engine;

namespace {
KvCache make(int blocks) {
  KvCacheShape s{1, 8, 4};
  auto kv = KvCache::create(s, KvCache::bytes_per_block(s) * blocks);
  REQUIRE(kv.ok());
  return std::move(kv).value();
}
std::vector<int32_t> iota_tokens(int n, int start = 0) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), start);
  return t;
}
}  // namespace

TEST_CASE("memory bound -> blocks, below one block is an error") {
  KvCacheShape s{2, 64, 16};
  CHECK(KvCache::bytes_per_block(s) == 2 * 2 * 16 * 64 * 4);
  auto kv = KvCache::create(s, KvCache::bytes_per_block(s) * 10 + 5);
  REQUIRE(kv.ok());
  CHECK(kv->stats().n_blocks == 10);
  auto none = KvCache::create(s, 100);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message.find("below one block") != std::string::npos);
}

TEST_CASE("full committed blocks are reused by hash chain, partial blocks are not") {
  KvCache kv = make(8);
  const auto a = kv.create_sequence();
  const auto toks = iota_tokens(10);  // 2 full blocks of 4 + 2
  REQUIRE(kv.reserve(a, 10).ok());
  kv.commit(a, toks);
  kv.free_sequence(a);
  CHECK(kv.stats().cached_blocks == 2);
  CHECK(kv.stats().free_blocks == 6);
  const auto b = kv.create_sequence();
  CHECK(kv.attach_prefix(b, toks, 9) == 8);
  CHECK(kv.stats().cached_blocks == 0);
  CHECK(kv.stats().used_blocks == 2);
  // Same second block but a different first block: the chain does not match.
  const auto c = kv.create_sequence();
  auto other = toks;
  other[0] = 99;
  CHECK(kv.attach_prefix(c, other, 9) == 0);
  kv.free_sequence(b);
  kv.free_sequence(c);
}

TEST_CASE("LRU eviction of unreferenced cached blocks, out of memory is an error") {
  KvCache kv = make(4);
  for (int r = 0; r < 2; ++r) {  // two different 2-block prompts fill the cache
    const auto s = kv.create_sequence();
    REQUIRE(kv.reserve(s, 8).ok());
    kv.commit(s, iota_tokens(8, 100 * r));
    kv.free_sequence(s);
  }
  CHECK(kv.stats().cached_blocks == 4);
  // Touch prompt 1 so prompt 0 is least recently used.
  {
    const auto s = kv.create_sequence();
    CHECK(kv.attach_prefix(s, iota_tokens(8, 100), 8) == 8);
    kv.free_sequence(s);
  }
  const auto s = kv.create_sequence();
  REQUIRE(kv.reserve(s, 8).ok());  // evicts prompt 0's two blocks
  CHECK(kv.stats().evictions == 2);
  const auto t = kv.create_sequence();
  CHECK(kv.attach_prefix(t, iota_tokens(8, 100), 8) == 8);  // prompt 1 survived
  const auto u = kv.create_sequence();
  auto oom = kv.reserve(u, 4);
  REQUIRE_FALSE(oom.ok());
  CHECK(oom.error().code == "kv_cache_full");
  CHECK(kv.stats().used_blocks == 4);
}

TEST_CASE("a request reusing a cached prefix computes only the suffix, with identical logits") {
  using frugal::engine::testing::TinySpec;
  TinySpec spec;
  spec.arch = "qwen2";
  spec.type = frugal::engine::GgmlType::kQ8_0;
  auto model = frugal::engine::testing::tiny_model(spec);
  ThreadPool pool(2);
  auto fwd = make_cpu_forward(model, &pool);
  auto kv = KvCache::create(kv_shape_for(model->config()), 8 << 20);
  REQUIRE(kv.ok());
  std::mt19937 rng(5);
  std::vector<int32_t> system(40), q1(7), q2(9);
  for (auto* v : {&system, &q1, &q2})
    for (auto& t : *v) t = static_cast<int32_t>(rng() % model->config().n_vocab);
  auto prompt = [&](const std::vector<int32_t>& q) {
    auto p = system;
    p.insert(p.end(), q.begin(), q.end());
    return p;
  };
  // Runs prompt p from position `from` (positions below are attached), returns last logits.
  auto run = [&](const std::vector<int32_t>& p, bool reuse, int* computed) {
    const auto seq = kv->create_sequence();
    const int from = reuse ? kv->attach_prefix(seq, p, static_cast<int32_t>(p.size()) - 1) : 0;
    REQUIRE(kv->reserve(seq, static_cast<int32_t>(p.size())).ok());
    std::vector<BatchEntry> batch;
    for (int i = from; i < static_cast<int>(p.size()); ++i)
      batch.push_back({p[i], i, seq, i + 1 == static_cast<int>(p.size())});
    std::vector<float> logits;
    REQUIRE(fwd->forward(batch, *kv, logits).ok());
    kv->commit(seq, std::span<const int32_t>(p).subspan(from));
    kv->free_sequence(seq);
    *computed = static_cast<int>(batch.size());
    return logits;
  };
  int computed = 0;
  run(prompt(q1), true, &computed);
  CHECK(computed == 47);
  const auto reused = run(prompt(q2), true, &computed);
  CHECK(computed == 49 - 32);  // two full blocks of 16 of the system prompt reused
  const auto fresh = run(prompt(q2), false, &computed);
  CHECK(computed == 49);
  CHECK(reused == fresh);
}
