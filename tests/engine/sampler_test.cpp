#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "backends/engine/sampler.h"

using namespace frugal::engine;

namespace {
std::vector<float> softmax(const std::vector<float>& l, float t = 1.0f) {
  float mx = l[0];
  for (float v : l) mx = std::max(mx, v);
  std::vector<float> p(l.size());
  double s = 0;
  for (size_t i = 0; i < l.size(); ++i) s += p[i] = std::exp((l[i] - mx) / t);
  for (auto& v : p) v = static_cast<float>(v / s);
  return p;
}
}  // namespace

TEST_CASE("greedy, top-k, top-p and min-p truncate as specified") {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f};
  SamplingParams g;
  g.temperature = 0;
  CHECK(Sampler(g, 1, 0, {}).sample(logits).token == 1);
  SamplingParams k;
  k.top_k = 2;
  auto d = Sampler(k, 1, 0, {}).distribution(logits);
  CHECK(d.tokens == std::vector<int32_t>{1, 4});
  SamplingParams p;
  p.top_p = 0.5f;  // softmax: 0.39 (1), 0.35 (4) ... -> two tokens reach 0.5
  d = Sampler(p, 1, 0, {}).distribution(logits);
  CHECK(d.tokens == std::vector<int32_t>{1, 4});
  SamplingParams m;
  m.min_p = 0.5f;  // keep p >= 0.5 * p_max: tokens 1, 4, 2 (e^-1 = 0.37 < 0.5 drops 2)
  d = Sampler(m, 1, 0, {}).distribution(logits);
  CHECK(d.tokens == std::vector<int32_t>{1, 4});
  double s = 0;
  for (float v : d.probs) s += v;
  CHECK(s == doctest::Approx(1.0));
}

TEST_CASE("penalties follow OpenAI (frequency/presence) and HF (repetition) semantics") {
  const std::vector<float> logits = {2.0f, 1.9f, -1.0f};
  SamplingParams sp;
  sp.temperature = 0;
  {
    sp.frequency_penalty = 0.06f;  // one occurrence: 2.0 - 0.06 > 1.9; two: 1.88 < 1.9
    Sampler s(sp, 1, 0, {});
    s.accept(0);
    CHECK(s.sample(logits).token == 0);  // records a second 0
    CHECK(s.sample(logits).token == 1);
  }
  {
    sp.frequency_penalty = 0;
    sp.presence_penalty = 0.2f;
    Sampler s(sp, 1, 0, {});
    s.accept(0);
    CHECK(s.sample(logits).token == 1);
  }
  {
    sp.presence_penalty = 0;
    sp.repetition_penalty = 1.1f;  // prompt token 0: 2.0 / 1.1 = 1.82 < 1.9
    const std::vector<int32_t> prompt = {0, 2};
    Sampler s(sp, 1, 0, prompt);
    CHECK(s.sample(logits).token == 1);
    SamplingParams t = sp;
    t.temperature = 1.0f;
    const auto d = Sampler(t, 1, 0, prompt).distribution(logits);
    // Negative logits are multiplied: -1.0 * 1.1 -> -1.1.
    const double e0 = std::exp(2.0 / 1.1), e1 = std::exp(1.9), e2 = std::exp(-1.1);
    CHECK(d.prob_of(2) == doctest::Approx(e2 / (e0 + e1 + e2)).epsilon(1e-4));
  }
}

TEST_CASE("temperature sampling draws from softmax(logits / T), reproducibly by seed") {
  const std::vector<float> logits = {0.0f, 1.0f, 0.5f, -1.0f};
  SamplingParams sp;
  sp.temperature = 0.7f;
  const auto want = softmax(logits, 0.7f);
  Sampler s(sp, 1234, 0, {});
  std::vector<int> hist(4);
  const int n = 100000;
  for (int i = 0; i < n; ++i) hist[s.draw(s.distribution(logits))]++;
  for (int i = 0; i < 4; ++i) CHECK(std::fabs(hist[i] / double(n) - want[i]) < 0.01);
  Sampler a(sp, 99, 0, {}), b(sp, 99, 0, {});
  for (int i = 0; i < 50; ++i) CHECK(a.sample(logits).token == b.sample(logits).token);
}

TEST_CASE("rejection sampler's output is distributed as the target p") {
  // Explicit p and q over 4 tokens, q deliberately unlike p (one token q-only, one p-only).
  Distribution p{{0, 1, 2, 3}, {0.5f, 0.2f, 0.3f, 0.0f}};
  Distribution q{{0, 1, 2, 3}, {0.1f, 0.6f, 0.0f, 0.3f}};
  Rng rng(7);
  std::vector<int> hist(4);
  int accepted = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    // x ~ q
    const double u = rng.uniform();
    int32_t x = u < 0.1 ? 0 : u < 0.7 ? 1 : 3;
    const auto d = speculative_accept(p, q, x, rng);
    hist[d.token]++;
    accepted += d.accepted;
  }
  // 3-sigma bound for a proportion near 0.5 with n = 200k is ~0.0034.
  for (int i = 0; i < 4; ++i) CHECK(std::fabs(hist[i] / double(n) - p.probs[i]) < 0.005);
  // Acceptance rate = sum min(p, q) = 0.1 + 0.2 + 0 + 0 = 0.3.
  CHECK(std::fabs(accepted / double(n) - 0.3) < 0.005);
}

TEST_CASE("logprobs and confidence signals") {
  const std::vector<float> logits = {0.0f, 2.0f, 1.0f};
  SamplingParams sp;
  sp.temperature = 0;
  Sampler s(sp, 1, 2, {});
  const auto t = s.sample(logits);
  const auto p = softmax(logits);
  CHECK(t.token == 1);
  CHECK(t.logprob == doctest::Approx(std::log(p[1])).epsilon(1e-5));
  REQUIRE(t.top.size() == 2);
  CHECK(t.top[0].token == 1);
  CHECK(t.top[1].token == 2);
  CHECK(t.margin == doctest::Approx(1.0f));
  ConfidenceAccumulator c;
  for (int i = 1; i <= 20; ++i) c.add(-0.1f * i, 0.5f * i);
  const auto r = c.result();
  CHECK(r.min_logprob == doctest::Approx(-2.0f));
  CHECK(r.p10_logprob == doctest::Approx(-1.9f));  // nearest rank 2 of 20 from the bottom
  CHECK(r.mean_logprob == doctest::Approx(-1.05f));
  CHECK(r.mean_margin == doctest::Approx(5.25f));
}

TEST_CASE("stop matcher holds back partial matches and cuts at the stop string") {
  StopMatcher m({"STOP", "\n\n"});
  CHECK(m.feed("Hel") == "Hel");
  CHECK(m.feed("lo ST") == "lo ");
  CHECK_FALSE(m.stopped());
  CHECK(m.feed("OP more") == "");
  CHECK(m.stopped());
  StopMatcher n({"xyz"});
  CHECK(n.feed("ab\xC3") == "ab");  // incomplete UTF-8 held back
  CHECK(n.feed("\xA9x") == "\xC3\xA9");
  CHECK(n.flush() == "x");
}

TEST_CASE("greedy sampling's token, logprob and margin match a scalar reference for every vocabulary size and tail") {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int n : {1, 2, 3, 7, 8, 9, 33, 512, 4095, 4097, 9001, 128256}) {
    for (int variant = 0; variant < 4; ++variant) {
      CAPTURE(n);
      CAPTURE(variant);
      std::vector<float> l(static_cast<size_t>(n));
      for (float& v : l) v = nd(rng);
      if (variant == 1) l[static_cast<size_t>(n) - 1] = 50.0f;  // the maximum in the tail
      if (variant == 2 && n > 1) l[0] = l[static_cast<size_t>(n) / 2] = 40.0f;  // a tie: the first wins, margin 0
      if (variant == 3)  // masked entries, as constrained decoding leaves them
        for (size_t i = 1; i < l.size(); i += 2) l[i] = -std::numeric_limits<float>::infinity();
      // Reference: first index of the max, double log-sum-exp, top-1 minus top-2.
      size_t best = 0;
      for (size_t i = 1; i < l.size(); ++i)
        if (l[i] > l[best]) best = i;
      double sum = 0;
      for (float v : l) sum += std::exp(static_cast<double>(v) - l[best]);
      float second = -std::numeric_limits<float>::infinity();
      for (size_t i = 0; i < l.size(); ++i)
        if (i != best) second = std::max(second, l[i]);
      SamplingParams p;
      p.temperature = 0;
      Sampler s(p, 1, 0, {});
      const SampledToken t = s.sample(l);
      CHECK(t.token == static_cast<int32_t>(best));
      CHECK(t.logprob == doctest::Approx(-std::log(sum)).epsilon(1e-5));
      CHECK(t.logprob <= 0.0f);
      if (n > 1) CHECK(t.margin == (variant == 2 ? 0.0f : l[best] - second));
      else CHECK(t.margin == 0.0f);
    }
  }
}
