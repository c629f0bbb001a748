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
// The target of these tests: small enough to run many decodes, Q4_0 like a real one.
TinySpec target_spec() {
  TinySpec ts;
  ts.type = GgmlType::kQ4_0;
  ts.n_embd = 128;
  ts.n_ff = 256;
  return ts;
}
}  // namespace

TEST_CASE("greedy speculative decoding reproduces target-only decoding for k in {1,2,4,8} and adaptive k") {
  const TinySpec ts = target_spec();
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
  // Never accepted: k drops to 0, with single-token probes after probe_every steps, then
  // after twice as many after each rejected probe.
  DraftLengthPolicy none(c);
  for (int i = 0; i < 30; ++i) {
    const auto ch = none.next();
    none.observe(ch.k, 0, ch.probe);
  }
  CHECK(none.acceptance() < 0.2);
  std::vector<int> ks;
  for (int i = 0; i < 40; ++i) {
    const auto ch = none.next();
    ks.push_back(ch.k);
    none.observe(ch.k, 0, ch.probe);
  }
  CHECK(std::count(ks.begin(), ks.end(), 1) >= 1);
  CHECK(std::count(ks.begin(), ks.end(), 1) <= 2);
  CHECK(std::count(ks.begin(), ks.end(), 0) + std::count(ks.begin(), ks.end(), 1) == 40);
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
  CHECK(none.probe_interval() == c.probe_every);
}

namespace {
// A draft without weights: proposes the token the target will choose (right) or one it
// never chooses (wrong), whatever the context. Its forwards cost nothing.
class ScriptedDraft final : public ForwardPass {
 public:
  ScriptedDraft(std::shared_ptr<const Model> m, std::vector<int32_t> want, int32_t prompt_len, bool right)
      : model_(std::move(m)), want_(std::move(want)), prompt_len_(prompt_len), right_(right) {}
  frugal::Result<void> forward(std::span<const BatchEntry> batch, KvCache&, std::vector<float>& logits) override {
    const int32_t V = model_->config().n_vocab;
    size_t rows = 0;
    for (const BatchEntry& e : batch) rows += e.logits;
    logits.assign(rows * V, 0.0f);
    size_t r = 0;
    for (const BatchEntry& e : batch) {
      if (!e.logits) continue;
      // Right: the target's token after position e.pos (positions match while the draft
      // keeps its whole context, as it does when it always pays).
      const size_t i = static_cast<size_t>(std::max<int32_t>(0, e.pos + 1 - prompt_len_));
      const int32_t t = right_ ? want_[std::min(i, want_.size() - 1)] : never();
      logits[r * V + static_cast<size_t>(t)] = 100.0f;
      ++r;
    }
    return {};
  }
  const Model& model() const override { return *model_; }

 private:
  int32_t never() const {
    for (int32_t t = 0;; ++t)
      if (std::find(want_.begin(), want_.end(), t) == want_.end()) return t;
  }
  std::shared_ptr<const Model> model_;
  std::vector<int32_t> want_;
  int32_t prompt_len_;
  bool right_;
};

DraftPolicyConfig fixed_costs() {
  DraftPolicyConfig c;
  c.k_max = 8;
  c.draft_cost = 0.05;  // cheap enough that a right draft pays: the worst case for probing
  c.verify_slope = 0.1;
  c.probe_every = 16;
  c.measure_costs = false;
  return c;
}
}  // namespace

TEST_CASE("the draft length policy probes a never-accepted draft O(log n) times and keeps k_max for an always-accepted one") {
  const int n = 1 << 14;
  DraftLengthPolicy wrong(fixed_costs());
  int drafting_steps = 0;
  for (int i = 0; i < n; ++i) {
    const auto ch = wrong.next();
    drafting_steps += ch.k > 0;
    wrong.observe(ch.k, 0, ch.probe);
  }
  MESSAGE("never accepted: " << drafting_steps << " drafting steps (" << wrong.probes() << " probes) in " << n);
  // Before the estimate falls: a few steps at the prior (2/3); then probes after 16, 32, ... steps.
  CHECK(wrong.probes() <= 11);  // log2(n / 16) + 1
  CHECK(drafting_steps <= 8 + static_cast<int>(wrong.probes()));
  CHECK(wrong.probe_interval() >= n / 16);

  DraftLengthPolicy right(fixed_costs());
  std::vector<int> ks;
  for (int i = 0; i < 200; ++i) {
    const auto ch = right.next();
    ks.push_back(ch.k);
    CHECK_FALSE(ch.probe);
    right.observe(ch.k, ch.k, ch.probe);
  }
  CHECK(std::count(ks.begin() + 5, ks.end(), 8) == static_cast<long>(ks.size()) - 5);
  CHECK(right.probes() == 0);

  // A draft right a third of the time that costs half a target step does not pay; its
  // probes stay rare (the wait grows by 1 - 2/3 of a doubling per probe on average).
  DraftPolicyConfig half = fixed_costs();
  half.draft_cost = 0.5;
  DraftLengthPolicy third(half);
  CHECK(third.can_pay());
  int probe = 0;
  for (int i = 0; i < n; ++i) {
    const auto ch = third.next();
    if (ch.probe) ++probe;
    third.observe(ch.k, ch.probe ? (probe % 3 == 0) : 0, ch.probe);
  }
  MESSAGE("right a third of the time: " << third.probes() << " probes in " << n);
  CHECK(third.probes() <= 40);
}

TEST_CASE("measured costs decide: a draft as slow as the target is never probed, a fast one drafts long") {
  DraftPolicyConfig c = fixed_costs();
  c.measure_costs = true;
  c.cost_weight = 1.0;  // the latest timing replaces the average: exact figures below
  DraftLengthPolicy p(c);
  p.observe_target(1, 0.010);
  p.observe_target(5, 0.012);
  p.observe_draft(1, 0.010);  // as slow as the target
  CHECK(p.draft_cost() == doctest::Approx(1.0));
  CHECK(p.verify_cost(4) == doctest::Approx(1.2));
  CHECK_FALSE(p.can_pay());
  for (int i = 0; i < 1000; ++i) CHECK(p.next().k == 0);
  CHECK(p.probes() == 0);
  // A draft forward of 5 tokens counts as 5 / verify_cost(4) single-token forwards.
  p.observe_draft(5, 0.0012);
  CHECK(p.draft_cost() == doctest::Approx(0.1));
  CHECK(p.can_pay());
  for (int i = 0; i < 20; ++i) p.observe(4, 4);
  CHECK(p.next().k >= 4);
  // Unmeasured lengths follow the prior, scaled by the nearest measured one.
  CHECK(p.verify_cost(8) == doctest::Approx(1.2 * 1.8 / 1.4));
}

TEST_CASE("adaptive speculative decoding with a never-right draft stays target-only, probing O(log n) times across requests") {
  const TinySpec ts = target_spec();
  auto target = tiny_model(ts);
  ThreadPool pool(2);
  auto tf = make_cpu_forward(target, &pool);
  auto tkv = KvCache::create(kv_shape_for(target->config()), 16 << 20);
  REQUIRE(tkv.ok());
  const std::vector<int32_t> prompt = {5, 17, 200, 42, 9};
  const int n = 300;
  const auto want = greedy_target_only(*tf, *tkv, prompt, n);
  SamplingParams greedy;
  greedy.temperature = 0;
  for (bool right : {false, true}) {
    CAPTURE(right);
    ScriptedDraft draft(target, want, static_cast<int32_t>(prompt.size()), right);
    auto dkv = KvCache::create(kv_shape_for(target->config()), 16 << 20);
    REQUIRE(dkv.ok());
    SpeculativeDecoder spec(*tf, *tkv, draft, *dkv);
    spec.set_policy(fixed_costs());
    auto got = spec.generate(prompt, greedy, 0, n, 0);
    REQUIRE(got.ok());
    CHECK(*got == want);
    const SpeculativeStats first = spec.stats();
    MESSAGE((right ? "right" : "wrong") << " draft: " << first.draft_steps << " draft forwards, " << first.probes
                                        << " probes, " << first.target_steps << " target steps for " << n << " tokens");
    if (!right) {
      CHECK(first.probes <= 5);  // after 16, 32, 64, 128 target-only steps
      CHECK(first.draft_steps <= first.probes + 20);  // + the first steps, at the prior's acceptance
      // The same decoder (one policy per target/draft pair) does not start over: the next
      // request waits on the learned back-off instead of drafting at the prior.
      auto again = spec.generate(prompt, greedy, 0, n, 0);
      REQUIRE(again.ok());
      CHECK(*again == want);
      const uint64_t second = spec.stats().draft_steps - first.draft_steps;
      MESSAGE("second request: " << second << " draft forwards");
      CHECK(second <= 1);
    } else {
      CHECK(first.probes == 0);
      CHECK(first.acceptance_rate() == 1.0);
      CHECK(first.tokens_per_target_step() > 7.0);  // k = 8: up to 9 tokens per verify
      CHECK(spec.policy()->best_k() == 8);
    }
    CHECK(tkv->stats().used_blocks == 0);
    CHECK(dkv->stats().used_blocks == 0);
  }
}

TEST_CASE("a probe's measured cost sets the least wait before the next, so probes stay within probe_budget") {
  DraftPolicyConfig c = fixed_costs();
  c.measure_costs = true;
  c.cost_weight = 1.0;
  c.probe_budget = 0.02;
  DraftLengthPolicy p(c);
  p.observe_target(1, 0.010);
  p.observe_target(2, 0.012);  // verify_cost(1) = 1.2
  p.observe_draft(1, 0.005);   // half a target step: worth probing
  REQUIRE(p.can_pay());
  for (int i = 0; i < 20; ++i) p.observe(1, 0);  // never accepted: k = 0 from here
  REQUIRE(p.best_k() == 0);
  int steps = 0;
  while (!p.next().probe) ++steps;
  CHECK(steps + 1 == c.probe_every);
  // The probe caught the draft up on 32 tokens: 0.03 s = 3 target steps, + 0.2 for the
  // verify of 2 tokens: 3.2 steps at a 2% budget -> at least 160 steps to the next probe.
  p.observe(1, 0, true);
  p.observe_probe(0.030);
  CHECK(p.probe_interval() == 160);
  steps = 0;
  while (!p.next().probe) ++steps;
  CHECK(steps + 1 == 160);
  // An accepted probe halves the wait, but not below its cost's floor.
  p.observe(1, 1, true);
  p.observe_probe(0.030);
  CHECK(p.probe_interval() == 160);
}
