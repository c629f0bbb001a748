#include <doctest/doctest.h>

#include <algorithm>

#include <random>

#include "backends/engine/forward.h"
#include "backends/engine/speculative.h"
#include "backends/engine/thread_pool.h"
#include "test_models.h"

using namespace frugal::engine;
using frugal::engine::testing::TinySpec;
using frugal::engine::testing::tiny_model;

namespace {
std::vector<int32_t> greedy_target_only(ForwardPass& f, KvCache& kv, const std::vector<int32_t>& prompt, int n) {
  const auto seq = kv.create_sequence();
  const int32_t V = f.model().config().n_vocab;
  std::vector<int32_t> out;
  std::vector<float> logits;
  int32_t next = -1;
  for (size_t i = 0; i < prompt.size() + n - 1; ++i) {
    const int32_t tok = i < prompt.size() ? prompt[i] : next;
    REQUIRE(kv.reserve(seq, static_cast<int32_t>(i) + 1).ok());
    BatchEntry e{tok, static_cast<int32_t>(i), seq, i + 1 >= prompt.size()};
    REQUIRE(f.forward({&e, 1}, kv, logits).ok());
    kv.commit(seq, {&tok, 1});
    if (e.logits) {
      next = static_cast<int32_t>(std::max_element(logits.begin(), logits.begin() + V) - logits.begin());
      out.push_back(next);
    }
  }
  kv.free_sequence(seq);
  return out;
}
}  // namespace

TEST_CASE("greedy speculative decoding reproduces target-only decoding for k in {1,2,4,8} and adaptive k") {
  TinySpec ts;
  ts.type = GgmlType::kQ4_0;
  ts.n_embd = 128;
  ts.n_ff = 256;
  auto target = tiny_model(ts);
  // Drafts: the same weights at higher precision (mostly agrees) and an unrelated model.
  TinySpec close = ts;
  close.type = GgmlType::kQ8_0;
  TinySpec unrelated = ts;
  unrelated.n_layer = 1;
  unrelated.n_embd = 64;
  unrelated.n_ff = 128;
  unrelated.seed = 99;
  ThreadPool pool(2);
  auto tf = make_cpu_forward(target, &pool);
  auto tkv = KvCache::create(kv_shape_for(target->config()), 8 << 20);
  REQUIRE(tkv.ok());
  std::mt19937 rng(11);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) {
    std::vector<int32_t> p(3 + 5 * i);
    for (auto& t : p) t = static_cast<int32_t>(rng() % 384);
    prompts.push_back(p);
  }
  const int kMax = 16;
  std::vector<std::vector<int32_t>> want;
  for (const auto& p : prompts) want.push_back(greedy_target_only(*tf, *tkv, p, kMax));
  SamplingParams greedy;
  greedy.temperature = 0;
  for (const TinySpec* ds : {&close, &unrelated}) {
    auto draft = tiny_model(*ds);
    auto df = make_cpu_forward(draft, &pool);
    auto dkv = KvCache::create(kv_shape_for(draft->config()), 8 << 20);
    REQUIRE(dkv.ok());
    for (int k : {1, 2, 4, 8, 0}) {
      SpeculativeDecoder spec(*tf, *tkv, *df, *dkv);
      for (size_t i = 0; i < prompts.size(); ++i) {
        auto got = spec.generate(prompts[i], greedy, 0, kMax, k);
        REQUIRE(got.ok());
        CHECK(*got == want[i]);
      }
      const auto& st = spec.stats();
      const std::string name = ds == &close ? "q8_0 draft" : "unrelated draft";
      MESSAGE(name << " k=" << k << ": acceptance "
              << st.acceptance_rate() << ", tokens per target step " << st.tokens_per_target_step());
      // (Adaptive k may rightly skip the close draft: Q8_0 reads more bytes than the Q4_0 target.)
      if (ds == &close && k > 0) CHECK(st.tokens_per_target_step() > 1.0);
      if (k == 0 && ds == &unrelated) {
        // Nothing is ever accepted: the policy stops drafting after a few steps and only
        // probes now and then, so the draft runs in a small fraction of the steps.
        MESSAGE("adaptive, unrelated draft: " << st.plain_steps << " of " << st.target_steps << " steps without drafting");
        CHECK(st.plain_steps * 4 >= st.target_steps * 3);
        CHECK(st.draft_steps * 4 <= st.target_steps);
      }
      CHECK(tkv->stats().used_blocks == 0);
      CHECK(dkv->stats().used_blocks == 0);
    }
  }
}

TEST_CASE("sampled speculative decoding is reproducible by seed and uses the target's support") {
  TinySpec ts;
  ts.type = GgmlType::kQ8_0;
  ts.n_embd = 64;
  ts.n_ff = 128;
  auto target = tiny_model(ts);
  TinySpec ds = ts;
  ds.type = GgmlType::kQ4_0;
  auto draft = tiny_model(ds);
  ThreadPool pool(1);
  auto tf = make_cpu_forward(target, &pool);
  auto df = make_cpu_forward(draft, &pool);
  auto tkv = KvCache::create(kv_shape_for(target->config()), 4 << 20);
  auto dkv = KvCache::create(kv_shape_for(draft->config()), 4 << 20);
  REQUIRE((tkv.ok() && dkv.ok()));
  SamplingParams sp;
  sp.temperature = 0.8f;
  sp.top_k = 5;
  SpeculativeDecoder a(*tf, *tkv, *df, *dkv), b(*tf, *tkv, *df, *dkv);
  const std::vector<int32_t> prompt = {5, 17, 200, 3};
  auto x = a.generate(prompt, sp, 7, 24, 4);
  auto y = b.generate(prompt, sp, 7, 24, 4);
  REQUIRE((x.ok() && y.ok()));
  CHECK(*x == *y);
  CHECK(x->size() == 24);
}

TEST_CASE("the draft length policy drafts long when acceptance pays, and not at all when it cannot") {
  DraftPolicyConfig c;
  c.k_max = 8;
  c.draft_cost = 0.1;
  c.verify_slope = 0.05;
  c.probe_every = 5;
  DraftLengthPolicy all(c);
  for (int i = 0; i < 20; ++i) all.observe(all.next_k(), 8);
  CHECK(all.acceptance() > 0.95);
  CHECK(all.next_k() == 8);
  // Never accepted: k drops to 0, with one single-token probe every probe_every steps.
  DraftLengthPolicy none(c);
  for (int i = 0; i < 30; ++i) none.observe(none.next_k(), 0);
  CHECK(none.acceptance() < 0.2);
  std::vector<int> ks;
  for (int i = 0; i < 10; ++i) {
    ks.push_back(none.next_k());
    none.observe(ks.back(), 0);
  }
  CHECK(std::count(ks.begin(), ks.end(), 0) == 8);
  CHECK(std::count(ks.begin(), ks.end(), 1) == 2);
  // A draft as costly as the target (self-draft) can never pay, even at acceptance 1.
  c.draft_cost = 1.0;
  DraftLengthPolicy self(c);
  for (int i = 0; i < 20; ++i) self.observe(8, 8);
  CHECK(self.next_k() == 0);
  for (int k = 1; k <= 8; ++k) CHECK(DraftLengthPolicy::expected_speedup(1.0 - 1e-9, k, 1.0, 0.05) < 1.0);
  // The model: acceptance a, k drafts -> (1 - a^(k+1)) / (1 - a) tokens.
  CHECK(DraftLengthPolicy::expected_speedup(0.5, 2, 0.0, 0.0) == doctest::Approx(1.75));
  CHECK(DraftLengthPolicy::expected_speedup(0.5, 0, 0.0, 0.0) == 1.0);
  // Recovery: after a bad stretch, good outcomes bring drafting back.
  for (int i = 0; i < 40; ++i) none.observe(1, 1);
  CHECK(none.next_k() > 0);
}
