// Speculative decoding inside the batching Engine: a draft model proposes tokens for
// every decoding sequence, the target verifies them in the same batched forward as the
// other sequences' work. Greedy output must equal target-only decoding through the
// Engine, token for token, whatever the draft and k.
#include <doctest/doctest.h>

#include <future>
#include <mutex>
#include <optional>
#include <random>

#include "backends/engine/engine.h"
#include "test_models.h"

using namespace frugal::engine;
using frugal::engine::testing::TinySpec;
using frugal::engine::testing::tiny_model;

namespace {

class NoText final : public TokenText {
 public:
  explicit NoText(int32_t eog = -1) : eog_(eog) {}
  std::string piece(int32_t token) const override {
    std::string s = "<";  // appended, not operator+ on a literal (GCC 12 -O2 false -Wrestrict)
    s += std::to_string(token);
    s += '>';
    return s;
  }
  bool is_end_of_generation(int32_t token) const override { return token == eog_; }

 private:
  int32_t eog_;
};

struct Out {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::vector<std::vector<TokenLogprob>> top;
  FinalEvent final;
};

// Submits every request at once (so they batch) and waits for all.
std::vector<Out> run_all(Engine& e, const std::vector<GenerateRequest>& reqs) {
  std::vector<Out> outs(reqs.size());
  std::vector<std::promise<void>> done(reqs.size());
  std::mutex mu;
  for (size_t i = 0; i < reqs.size(); ++i) {
    e.submit(reqs[i], [&, i](const GenerateEvent& ev) {
      std::lock_guard lock(mu);
      if (ev.is_final) {
        outs[i].final = ev.final;
        done[i].set_value();
      } else {
        outs[i].tokens.push_back(ev.token.token);
        outs[i].logprobs.push_back(ev.token.logprob);
        outs[i].top.push_back(ev.token.top_logprobs);
      }
    });
  }
  for (auto& d : done) d.get_future().wait();
  // The last callback may still hold `mu` after set_value: wait for it before `mu` dies.
  std::lock_guard lock(mu);
  return outs;
}

TinySpec target_spec() {
  TinySpec ts;
  ts.type = GgmlType::kQ4_0;
  ts.n_embd = 128;
  ts.n_ff = 256;
  return ts;
}

// A draft that shares nothing with the target: its proposals are (almost) never right.
TinySpec unrelated_spec() {
  TinySpec ts = target_spec();
  ts.n_layer = 1;
  ts.n_embd = 64;
  ts.n_ff = 128;
  ts.seed = 99;
  return ts;
}

std::unique_ptr<Engine> make(std::shared_ptr<const Model> draft, int k, int32_t eog = -1, bool adaptive = false,
                             std::optional<DraftPolicyConfig> policy = std::nullopt) {
  EngineConfig cfg;
  cfg.draft_adaptive = adaptive;
  cfg.n_threads = 2;
  cfg.kv_cache_bytes = 8 << 20;
  cfg.draft = std::move(draft);
  cfg.draft_tokens = k;
  cfg.prefill_chunk = 16;  // several chunks per prompt: the draft mirrors each
  if (policy) cfg.draft_policy = *policy;
  auto e = Engine::create(tiny_model(target_spec()), cfg, std::make_shared<NoText>(eog));
  REQUIRE_MESSAGE(e.ok(), (e.ok() ? "" : e.error().message));
  return std::move(e).value();
}

std::vector<GenerateRequest> prompts(int n, int max_tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < n; ++i) {
    GenerateRequest r;
    r.prompt.resize(3 + 11 * i);
    for (auto& t : r.prompt) t = static_cast<int32_t>(rng() % 384);
    r.sampling.temperature = 0;
    r.max_tokens = max_tokens + i;
    r.logprobs = true;
    r.top_logprobs = 2;
    reqs.push_back(std::move(r));
  }
  return reqs;
}

}  // namespace

TEST_CASE("greedy speculative batching reproduces target-only decoding, for drafts and k") {
  const auto reqs = prompts(6, 20, 5);
  auto plain = make(nullptr, 1);
  const auto want = run_all(*plain, reqs);
  CHECK(plain->stats().drafted == 0);

  TinySpec close = target_spec();  // same weights at higher precision: mostly agrees
  close.type = GgmlType::kQ8_0;
  TinySpec unrelated = unrelated_spec();
  for (const TinySpec* ds : {&close, &unrelated}) {
    const std::string name = ds == &close ? "q8_0 draft" : "unrelated draft";
    for (int k : {1, 2, 4, 8}) {
      CAPTURE(name);
      CAPTURE(k);
      auto e = make(tiny_model(*ds), k);
      const auto got = run_all(*e, reqs);
      for (size_t i = 0; i < reqs.size(); ++i) {
        CAPTURE(i);
        CHECK(got[i].tokens == want[i].tokens);
        CHECK(got[i].final.reason == FinishReason::kLength);
        CHECK(got[i].final.usage.completion_tokens == reqs[i].max_tokens);
        REQUIRE(got[i].logprobs.size() == want[i].logprobs.size());
        for (size_t j = 0; j < got[i].logprobs.size(); ++j) {
          CHECK(got[i].logprobs[j] == doctest::Approx(want[i].logprobs[j]).epsilon(1e-4));
          REQUIRE(got[i].top[j].size() == 2);
          CHECK(got[i].top[j][0].token == want[i].top[j][0].token);
        }
      }
      const EngineStats st = e->stats();
      MESSAGE(name << " k=" << k << ": acceptance " << st.acceptance_rate() << ", tokens per verify "
                   << st.tokens_per_verify() << ", target steps " << st.steps);
      CHECK(st.drafted > 0);
      CHECK(st.accepted <= st.drafted);
      CHECK(st.spec_generated >= st.spec_verifies);
      // Fewer target forwards per token for the same output. (Not `st.steps` against the
      // plain engine's: how the six submissions batch depends on when the scheduler
      // thread wakes, so step counts differ between runs under load.)
      if (ds == &close) CHECK(st.tokens_per_verify() > 1.0);
      CHECK(st.kv.used_blocks == 0);
      CHECK(st.draft_kv.used_blocks == 0);
    }
  }
}

TEST_CASE("speculative sampling is reproducible by seed, EOS, max_tokens and cancel finish cleanly") {
  TinySpec ds = target_spec();
  ds.type = GgmlType::kQ8_0;
  auto e = make(tiny_model(ds), 4);
  auto reqs = prompts(3, 24, 8);
  for (auto& r : reqs) {
    r.sampling.temperature = 0.9f;
    r.sampling.top_k = 8;
    r.seed = 1234;
  }
  const auto a = run_all(*e, reqs);
  const auto b = run_all(*e, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    CHECK(a[i].tokens == b[i].tokens);
    CHECK(static_cast<int32_t>(a[i].tokens.size()) == reqs[i].max_tokens);
  }
  CHECK(e->stats().accepted > 0);

  // EOS: make a token the greedy answer produces the end of generation; output stops there.
  auto plain = make(nullptr, 1);
  const auto g = run_all(*plain, prompts(1, 12, 3));
  REQUIRE(g[0].tokens.size() > 4);
  const int32_t eog = g[0].tokens[4];
  const size_t first = static_cast<size_t>(std::find(g[0].tokens.begin(), g[0].tokens.end(), eog) - g[0].tokens.begin());
  auto with_eos = make(tiny_model(ds), 4, eog);
  const auto s = run_all(*with_eos, prompts(1, 12, 3));
  CHECK(s[0].final.reason == FinishReason::kStop);
  CHECK(s[0].tokens == std::vector<int32_t>(g[0].tokens.begin(), g[0].tokens.begin() + first));
  CHECK(s[0].final.usage.completion_tokens == static_cast<int32_t>(first) + 1);

  // Cancel mid-generation: both caches give every block back.
  std::promise<void> started, done;
  std::atomic<int> n{0};
  const Engine::Handle h = e->submit(prompts(1, 4000, 4)[0], [&](const GenerateEvent& ev) {
    if (ev.is_final) {
      CHECK(ev.final.reason == FinishReason::kCancelled);
      done.set_value();
    } else if (++n == 5) {
      started.set_value();
    }
  });
  started.get_future().wait();
  h.cancel();
  done.get_future().wait();
  // The final event is published after the blocks are freed.
  CHECK(e->stats().kv.used_blocks == 0);
  CHECK(e->stats().draft_kv.used_blocks == 0);
  e->shutdown();  // the engine thread is out of the callback before its locals die
}

TEST_CASE("adaptive draft length in the engine stops drafting what is never accepted, output unchanged") {
  const auto reqs = prompts(4, 24, 5);
  auto plain = make(nullptr, 1);
  const auto want = run_all(*plain, reqs);
  const TinySpec unrelated = unrelated_spec();
  auto fixed = make(tiny_model(unrelated), 4);
  const auto got_fixed = run_all(*fixed, reqs);
  auto adaptive = make(tiny_model(unrelated), 4, -1, true);
  const auto got = run_all(*adaptive, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].tokens == want[i].tokens);
    CHECK(got_fixed[i].tokens == want[i].tokens);
  }
  const EngineStats a = adaptive->stats(), f = fixed->stats();
  MESSAGE("unrelated draft: fixed k=4 drafted " << f.drafted << ", adaptive drafted " << a.drafted << " (accepted "
                                                << a.accepted << ")");
  CHECK(a.drafted > 0);               // it tried
  CHECK(a.drafted * 4 <= f.drafted);  // and mostly stopped
  CHECK(a.kv.used_blocks == 0);
  CHECK(a.draft_kv.used_blocks == 0);
}

TEST_CASE("the engine's adaptive draft policy is shared across requests: a later request starts from what earlier ones measured") {
  auto reqs = prompts(3, 0, 17);
  for (auto& r : reqs) r.max_tokens = 64;
  auto plain = make(nullptr, 1);
  const auto want = run_all(*plain, reqs);
  const TinySpec unrelated = unrelated_spec();
  DraftPolicyConfig pc;
  pc.k_max = 4;
  pc.draft_cost = 0.1;  // cheap enough to be worth probing
  pc.measure_costs = false;
  auto e = make(tiny_model(unrelated), 4, -1, true, pc);
  Engine& engine = *e;
  std::vector<EngineStats> after;
  for (size_t i = 0; i < reqs.size(); ++i) {  // one after another
    const auto got = run_all(engine, {reqs[i]});
    CAPTURE(i);
    CHECK(got[0].tokens == want[i].tokens);
    after.push_back(engine.stats());
  }
  for (size_t i = 0; i < after.size(); ++i)
    MESSAGE("after request " << i << ": drafted " << after[i].drafted << " (accepted " << after[i].accepted << "), "
                             << after[i].draft_probes << " probes, " << after[i].draft_forwards << " draft forwards");
  REQUIRE(after[0].accepted == 0);  // the unrelated draft is never right
  CHECK(after[0].drafted > 0);      // the first request tried it (the prior expects 2/3)
  // The later requests neither draft at the prior again nor mirror their prompts
  // (40 and 51 tokens, chunks of 16): at most one probe each.
  CHECK(after[1].draft_forwards - after[0].draft_forwards <= 1);
  CHECK(after[2].draft_forwards - after[1].draft_forwards <= 1);
  CHECK(after[2].drafted - after[0].drafted <= 2);
  CHECK(after[2].kv.used_blocks == 0);
  CHECK(after[2].draft_kv.used_blocks == 0);
  engine.shutdown();
}
