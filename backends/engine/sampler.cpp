#include "backends/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "backends/engine/kernels.h"

namespace frugal::engine {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Below this log-ratio to the best logit a token's probability (< 1e-13 relative) cannot
// change a draw in practice; dropping such tokens keeps the sort short on big vocabularies.
constexpr float kNegligibleLogit = 30.0f;
constexpr int kMaxTopLogprobs = 20;

// Max over n > 0 floats, 8 independent chains (the compiler keeps them in registers; one
// dependent chain, like std::max_element's, runs 4x slower on 128k-entry vocabularies).
float max_of(const float* v, int64_t n) {
  float m[8];
  for (float& x : m) x = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) m[j] = v[i + j] > m[j] ? v[i + j] : m[j];
  for (; i < n; ++i) m[0] = v[i] > m[0] ? v[i] : m[0];
  float r = m[0];
  for (int j = 1; j < 8; ++j) r = m[j] > r ? m[j] : r;
  return r;
}
// The first index of the maximum (as std::max_element).
int32_t argmax(std::span<const float> v) {
  if (v.empty()) return 0;
  const float m = max_of(v.data(), static_cast<int64_t>(v.size()));
  const auto it = std::find(v.begin(), v.end(), m);
  return it == v.end() ? static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin())  // NaNs
                       : static_cast<int32_t>(it - v.begin());
}
}  // namespace

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}
uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}
double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

float Distribution::prob_of(int32_t token) const {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] == token) return probs[i];
  return 0.0f;
}

Sampler::Sampler(const SamplingParams& params, uint64_t seed, int top_logprobs,
                 std::span<const int32_t> prompt)
    : params_(params), rng_(seed), top_logprobs_(std::clamp(top_logprobs, 0, kMaxTopLogprobs)) {
  if (params_.repetition_penalty != 1.0f)
    for (int32_t t : prompt) prompt_counts_[t]++;
}

void Sampler::accept(int32_t token) { output_counts_[token]++; }

void Sampler::penalize(std::vector<float>& logits) const {
  const float rp = params_.repetition_penalty;
  if (rp != 1.0f) {
    auto apply = [&](int32_t t) {
      float& l = logits[t];
      l = l > 0 ? l / rp : l * rp;
    };
    for (const auto& [t, c] : prompt_counts_)
      if (t >= 0 && t < static_cast<int32_t>(logits.size())) apply(t);
    for (const auto& [t, c] : output_counts_)
      if (t >= 0 && t < static_cast<int32_t>(logits.size()) && !prompt_counts_.contains(t)) apply(t);
  }
  if (params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f) {
    for (const auto& [t, c] : output_counts_)
      if (t >= 0 && t < static_cast<int32_t>(logits.size()))
        logits[t] -= params_.frequency_penalty * static_cast<float>(c) + params_.presence_penalty;
  }
}

Distribution Sampler::distribution(std::span<const float> raw) const {
  std::vector<float> logits(raw.begin(), raw.end());
  penalize(logits);
  Distribution d;
  if (greedy()) {
    d.tokens = {argmax(logits)};
    d.probs = {1.0f};
    return d;
  }
  const float inv_t = 1.0f / params_.temperature;
  const float maxl = *std::max_element(logits.begin(), logits.end());
  std::vector<int32_t> cand;
  cand.reserve(1024);
  for (int32_t i = 0; i < static_cast<int32_t>(logits.size()); ++i)
    if ((logits[i] - maxl) * inv_t > -kNegligibleLogit) cand.push_back(i);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < cand.size()) {
    std::nth_element(cand.begin(), cand.begin() + params_.top_k, cand.end(), by_logit);
    cand.resize(params_.top_k);
  }
  std::sort(cand.begin(), cand.end(), by_logit);
  std::vector<double> p(cand.size());
  double sum = 0;
  for (size_t i = 0; i < cand.size(); ++i) sum += p[i] = std::exp(static_cast<double>((logits[cand[i]] - maxl) * inv_t));
  for (auto& v : p) v /= sum;
  size_t keep = cand.size();
  if (params_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < cand.size(); ++i) {
      cum += p[i];
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0f) {
    const double floor = params_.min_p * p[0];
    size_t k = 1;
    while (k < keep && p[k] >= floor) ++k;
    keep = k;
  }
  double kept = 0;
  for (size_t i = 0; i < keep; ++i) kept += p[i];
  d.tokens.assign(cand.begin(), cand.begin() + keep);
  d.probs.resize(keep);
  for (size_t i = 0; i < keep; ++i) d.probs[i] = static_cast<float>(p[i] / kept);
  return d;
}

int32_t Sampler::draw(const Distribution& dist) {
  if (dist.tokens.size() == 1) return dist.tokens[0];
  const double u = rng_.uniform();
  double cum = 0;
  for (size_t i = 0; i < dist.tokens.size(); ++i) {
    cum += dist.probs[i];
    if (u < cum) return dist.tokens[i];
  }
  return dist.tokens.back();
}

SampledToken Sampler::describe(std::span<const float> logits, int32_t token) const {
  SampledToken out;
  out.token = token;
  // The margin: the best logit minus the best of the others.
  const int64_t n = static_cast<int64_t>(logits.size());
  const int32_t b1 = n > 0 ? argmax(logits) : -1;
  if (n > 1) {
    const float* v = logits.data();
    float second = -std::numeric_limits<float>::infinity();
    if (b1 > 0) second = max_of(v, b1);
    if (b1 + 1 < n) second = std::max(second, max_of(v + b1 + 1, n - b1 - 1));
    out.margin = logits[b1] - second;
  }
  // log-sum-exp with the kernels' vector exp (one call per sampled token over the whole
  // vocabulary: a scalar double exp cost 1.5 ms per token at 128k entries), summed per
  // chunk in f32 and across chunks in double.
  const float maxl = b1 >= 0 ? logits[b1] : 0.0f;
  static thread_local std::vector<float> scratch;
  scratch.assign(logits.begin(), logits.end());
  const auto exp_sum = cpu::default_kernels().exp_sum;
  double sum = 0;
  constexpr int64_t kChunk = 4096;
  for (int64_t i = 0; i < static_cast<int64_t>(scratch.size()); i += kChunk)
    sum += exp_sum(scratch.data() + i, std::min<int64_t>(kChunk, static_cast<int64_t>(scratch.size()) - i), maxl);
  const float lse = maxl + static_cast<float>(std::log(sum));
  out.logprob = logits[token] - lse;
  if (top_logprobs_ > 0) {
    const int k = std::min<int>(top_logprobs_, static_cast<int>(logits.size()));
    std::vector<int32_t> idx(logits.size());
    std::iota(idx.begin(), idx.end(), 0);
    auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
    for (int i = 0; i < k; ++i) out.top.push_back({idx[i], logits[idx[i]] - lse});
  }
  return out;
}

bool Sampler::plain_greedy() const {
  return greedy() && params_.repetition_penalty == 1.0f && params_.frequency_penalty == 0.0f &&
         params_.presence_penalty == 0.0f;
}

int32_t Sampler::pick(std::span<const float> logits) {
  return plain_greedy() ? argmax(logits) : draw(distribution(logits));
}

SampledToken Sampler::sample(std::span<const float> logits) {
  const int32_t token = pick(logits);
  accept(token);
  return describe(logits, token);
}

SampledToken Sampler::sample(std::span<const float> logits, TokenFilter& filter) {
  int32_t token = pick(logits);
  if (!filter.allows(token)) {
    std::vector<float> masked(logits.begin(), logits.end());
    filter.mask(masked);
    if (std::none_of(masked.begin(), masked.end(), [](float l) { return std::isfinite(l); })) return {};
    token = pick(masked);
  }
  accept(token);
  return describe(logits, token);
}

SpecDecision speculative_accept(const Distribution& p, const Distribution& q, int32_t drafted, Rng& rng) {
  const float px = p.prob_of(drafted), qx = q.prob_of(drafted);
  if (qx > 0.0f && rng.uniform() * qx < px) return {drafted, true};  // u < p/q without dividing
  // Residual: norm(max(0, p - q)) over p's support (outside it the residual is 0).
  std::vector<double> r(p.tokens.size());
  double sum = 0;
  for (size_t i = 0; i < p.tokens.size(); ++i)
    sum += r[i] = std::max(0.0, static_cast<double>(p.probs[i]) - q.prob_of(p.tokens[i]));
  if (sum <= 0.0) {  // p == q up to rounding: any draw from p is exact
    const double u = rng.uniform();
    double cum = 0;
    for (size_t i = 0; i < p.tokens.size(); ++i)
      if (u < (cum += p.probs[i])) return {p.tokens[i], false};
    return {p.tokens.back(), false};
  }
  const double u = rng.uniform() * sum;
  double cum = 0;
  for (size_t i = 0; i < p.tokens.size(); ++i)
    if (u < (cum += r[i])) return {p.tokens[i], false};
  for (size_t i = p.tokens.size(); i-- > 0;)
    if (r[i] > 0) return {p.tokens[i], false};
  return {p.tokens.back(), false};
}

void ConfidenceAccumulator::add(float logprob, float margin) {
  min_margin_ = logprobs_.empty() ? margin : std::min(min_margin_, margin);
  logprobs_.push_back(logprob);
  margin_sum_ += margin;
}

Confidence ConfidenceAccumulator::result() const {
  Confidence c;
  if (logprobs_.empty()) return c;
  std::vector<float> v = logprobs_;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (float x : v) sum += x;
  c.mean_logprob = static_cast<float>(sum / v.size());
  c.min_logprob = v.front();
  // Nearest rank: ceil(0.1 * n) - 1.
  const size_t rank = std::max<size_t>(1, (v.size() + 9) / 10) - 1;
  c.p10_logprob = v[rank];
  c.mean_margin = static_cast<float>(margin_sum_ / v.size());
  c.min_margin = min_margin_;
  return c;
}

namespace {
// Bytes at the end of s that start an incomplete UTF-8 sequence.
size_t incomplete_utf8_tail(std::string_view s) {
  for (size_t back = 1; back <= 4 && back <= s.size(); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 1;
    if ((c & 0xE0) == 0xC0) need = 2;
    else if ((c & 0xF0) == 0xE0) need = 3;
    else if ((c & 0xF8) == 0xF0) need = 4;
    return need > back ? back : 0;
  }
  return 0;
}
}  // namespace

std::string StopMatcher::feed(std::string_view piece) {
  if (stopped_) return {};
  pending_.append(piece);
  size_t best = std::string::npos;
  for (const auto& s : stops_) {
    if (s.empty()) continue;
    const size_t pos = pending_.find(s);
    if (pos < best) best = pos;
  }
  if (best != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, best);
    pending_.clear();
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of a stop string.
  size_t hold = 0;
  for (const auto& s : stops_) {
    for (size_t len = std::min(s.size() - (s.empty() ? 0 : 1), pending_.size()); len > hold; --len) {
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  hold = std::max(hold, incomplete_utf8_tail(pending_));
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  if (!stopped_) out.swap(pending_);
  pending_.clear();
  return out;
}

}  // namespace frugal::engine
