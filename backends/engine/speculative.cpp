#include "backends/engine/speculative.h"

#include <algorithm>
#include <cmath>

namespace frugal::engine {

DraftLengthPolicy::DraftLengthPolicy(DraftPolicyConfig config) : config_(config) {
  config_.k_max = std::max(0, config_.k_max);
  config_.probe_every = std::max(1, config_.probe_every);
}

double DraftLengthPolicy::acceptance() const { return std::clamp(successes_ / trials_, 0.0, 0.999); }

double DraftLengthPolicy::expected_speedup(double a, int k, double draft_cost, double verify_slope) {
  if (k <= 0) return 1.0;
  const double tokens = (1.0 - std::pow(a, k + 1)) / (1.0 - a);
  return tokens / (k * draft_cost + 1.0 + verify_slope * k);
}

int DraftLengthPolicy::next_k() {
  const double a = acceptance();
  int best = 0;
  double best_rate = 1.0;
  for (int k = 1; k <= config_.k_max; ++k) {
    const double rate = expected_speedup(a, k, config_.draft_cost, config_.verify_slope);
    if (rate > best_rate * 1.02) {  // a 2% margin: the model is an estimate
      best = k;
      best_rate = rate;
    }
  }
  if (best > 0 || config_.k_max == 0) {
    idle_steps_ = 0;
    return best;
  }
  if (++idle_steps_ >= config_.probe_every) {
    idle_steps_ = 0;
    return 1;
  }
  return 0;
}

void DraftLengthPolicy::observe(int drafted, int accepted) {
  if (drafted <= 0) return;
  accepted = std::clamp(accepted, 0, drafted);
  successes_ = config_.decay * successes_ + accepted;
  trials_ = config_.decay * trials_ + accepted + (accepted < drafted ? 1 : 0);
}

double draft_cost_estimate(const Model& target, const Model& draft) {
  const double t = static_cast<double>(target.weight_bytes_per_token());
  return t > 0 ? static_cast<double>(draft.weight_bytes_per_token()) / t : 1.0;
}

SpeculativeDecoder::SpeculativeDecoder(ForwardPass& target, KvCache& target_kv, ForwardPass& draft, KvCache& draft_kv)
    : target_(target), target_kv_(target_kv), draft_(draft), draft_kv_(draft_kv) {}

Result<std::vector<int32_t>> SpeculativeDecoder::generate(const std::vector<int32_t>& prompt,
                                                          const SamplingParams& params, uint64_t seed,
                                                          int max_tokens, int k,
                                                          const std::function<bool(int32_t)>& is_end) {
  if (prompt.empty()) return make_error(ErrorKind::kInvalidRequest, "empty prompt", "prompt");
  if (target_.model().config().n_vocab != draft_.model().config().n_vocab)
    return make_error(ErrorKind::kInvalidRequest, "speculative decoding: draft and target vocabularies differ");
  DraftLengthPolicy* policy = nullptr;
  if (k <= 0) {
    if (!policy_) {
      DraftPolicyConfig pc;
      pc.draft_cost = draft_cost_estimate(target_.model(), draft_.model());
      policy_.emplace(pc);
    }
    policy = &*policy_;
    k = std::max(1, policy->config().k_max);
  }
  const int32_t V = target_.model().config().n_vocab;
  Sampler sampler(params, seed, 0, prompt);
  Rng& rng = sampler.rng();
  const auto tseq = target_kv_.create_sequence();
  const auto dseq = draft_kv_.create_sequence();
  struct Cleanup {
    KvCache& a; KvCache::SeqId as; KvCache& b; KvCache::SeqId bs;
    ~Cleanup() { a.free_sequence(as); b.free_sequence(bs); }
  } cleanup{target_kv_, tseq, draft_kv_, dseq};

  // Both models hold K/V for every committed token except `pending`, the newest one.
  std::vector<float> logits;
  auto prefill = [&](ForwardPass& f, KvCache& kv, KvCache::SeqId seq, std::span<const int32_t> toks) -> Result<void> {
    if (toks.empty()) return {};
    const int32_t base = kv.committed(seq);
    FRUGAL_TRY(kv.reserve(seq, base + static_cast<int32_t>(toks.size())));
    std::vector<BatchEntry> b;
    for (size_t i = 0; i < toks.size(); ++i) b.push_back({toks[i], base + static_cast<int32_t>(i), seq, false});
    FRUGAL_TRY(f.forward(b, kv, logits));
    kv.commit(seq, toks);
    return {};
  };
  const std::span<const int32_t> head(prompt.data(), prompt.size() - 1);
  FRUGAL_TRY(prefill(target_, target_kv_, tseq, head));
  FRUGAL_TRY(prefill(draft_, draft_kv_, dseq, head));
  int32_t pending = prompt.back();
  std::vector<int32_t> draft_lag;  // accepted tokens the draft has not computed yet
  std::vector<int32_t> out;
  std::vector<Distribution> q(k);
  std::vector<int32_t> drafted(k);

  while (static_cast<int>(out.size()) < max_tokens) {
    // Draft k tokens: the first forward also catches up on draft_lag. Nothing is
    // committed to the draft cache until the target has verified it.
    const int32_t k_step = policy ? policy->next_k() : k;
    const int32_t n_draft = std::min<int32_t>(k_step, max_tokens - static_cast<int32_t>(out.size()));
    std::vector<int32_t> feed = draft_lag;
    feed.push_back(pending);
    std::vector<int32_t> draft_computed;  // tokens whose K/V the draft wrote this round
    int32_t dpos = draft_kv_.committed(dseq);
    for (int32_t i = 0; i < n_draft; ++i) {
      FRUGAL_TRY(draft_kv_.reserve(dseq, dpos + static_cast<int32_t>(feed.size())));
      std::vector<BatchEntry> b;
      for (size_t j = 0; j < feed.size(); ++j)
        b.push_back({feed[j], dpos + static_cast<int32_t>(j), dseq, j + 1 == feed.size()});
      FRUGAL_TRY(draft_.forward(b, draft_kv_, logits));
      dpos += static_cast<int32_t>(feed.size());
      draft_computed.insert(draft_computed.end(), feed.begin(), feed.end());
      stats_.draft_steps++;
      q[i] = sampler.distribution(std::span<const float>(logits.data(), V));
      drafted[i] = sampler.greedy() ? q[i].tokens[0] : sampler.draw(q[i]);
      feed = {drafted[i]};
    }
    stats_.drafted += n_draft;
    // Verify: target scores [pending, d_1..d_n] at once -> p_1..p_{n+1}.
    const int32_t base = target_kv_.committed(tseq);
    FRUGAL_TRY(target_kv_.reserve(tseq, base + n_draft + 1));
    std::vector<BatchEntry> b{{pending, base, tseq, true}};
    for (int32_t i = 0; i < n_draft; ++i) b.push_back({drafted[i], base + 1 + i, tseq, true});
    FRUGAL_TRY(target_.forward(b, target_kv_, logits));
    stats_.target_steps++;
    int32_t accepted = 0;
    int32_t extra = -1;
    for (; accepted < n_draft; ++accepted) {
      const auto p = sampler.distribution(std::span<const float>(logits.data() + static_cast<size_t>(accepted) * V, V));
      if (sampler.greedy()) {
        if (p.tokens[0] != drafted[accepted]) {
          extra = p.tokens[0];
          break;
        }
      } else {
        const auto d = speculative_accept(p, q[accepted], drafted[accepted], rng);
        if (!d.accepted) {
          extra = d.token;
          break;
        }
      }
    }
    if (extra < 0) {  // all accepted: bonus token from p_{n+1}
      const auto p = sampler.distribution(std::span<const float>(logits.data() + static_cast<size_t>(n_draft) * V, V));
      extra = sampler.greedy() ? p.tokens[0] : sampler.draw(p);
    }
    stats_.accepted += accepted;
    if (policy) policy->observe(n_draft, accepted);
    if (n_draft == 0) stats_.plain_steps++;
    // Commit pending + accepted drafts in both caches; drop the rejected positions.
    std::vector<int32_t> committed{pending};
    committed.insert(committed.end(), drafted.begin(), drafted.begin() + accepted);
    target_kv_.commit(tseq, committed);
    target_kv_.shrink(tseq);
    if (n_draft == 0) {
      draft_lag.push_back(pending);  // the draft sat this step out
    } else {
      // The draft computed lag, pending, d_1..d_{n-1}: keep lag, pending and the accepted drafts.
      const size_t keep = draft_lag.size() + 1 + std::min<int32_t>(accepted, n_draft - 1);
      draft_kv_.commit(dseq, std::span<const int32_t>(draft_computed).first(keep));
      draft_kv_.shrink(dseq);
      draft_lag.clear();
      if (accepted == n_draft) draft_lag.push_back(drafted[n_draft - 1]);
    }
    std::vector<int32_t> new_tokens(drafted.begin(), drafted.begin() + accepted);
    new_tokens.push_back(extra);
    bool end = false;
    for (int32_t t : new_tokens) {
      if (static_cast<int>(out.size()) >= max_tokens) break;
      out.push_back(t);
      sampler.accept(t);
      stats_.generated++;
      if (is_end && is_end(t)) {
        end = true;
        break;
      }
    }
    if (end) break;
    pending = extra;
  }
  return out;
}

}  // namespace frugal::engine
