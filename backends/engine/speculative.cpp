#include "backends/engine/speculative.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace frugal::engine {

DraftLengthPolicy::DraftLengthPolicy(DraftPolicyConfig config) : config_(config) {
  config_.k_max = std::max(0, config_.k_max);
  config_.probe_every = std::max(1, config_.probe_every);
  config_.probe_max = std::max(config_.probe_every, config_.probe_max);
  config_.probe_window = std::max(0, config_.probe_window);
  config_.cost_weight = std::clamp(config_.cost_weight, 0.0, 1.0);
  config_.probe_budget = std::max(0.0, config_.probe_budget);
  interval_ = config_.probe_every;
  target_s_.assign(static_cast<size_t>(config_.k_max) + 1, 0.0);
}

double DraftLengthPolicy::acceptance() const { return std::clamp(successes_ / trials_, 0.0, 0.999); }

double DraftLengthPolicy::expected_rate(double a, int k, double draft_cost, double verify_cost) {
  if (k <= 0) return 1.0;
  const double tokens = (1.0 - std::pow(a, k + 1)) / (1.0 - a);
  return tokens / (k * draft_cost + verify_cost);
}

double DraftLengthPolicy::expected_speedup(double a, int k, double draft_cost, double verify_slope) {
  return expected_rate(a, k, draft_cost, 1.0 + verify_slope * k);
}

double DraftLengthPolicy::draft_cost() const {
  if (draft_s_ > 0 && target_s_[0] > 0) return draft_s_ / target_s_[0];
  return config_.draft_cost;
}

double DraftLengthPolicy::verify_cost(int k) const {
  const double prior = 1.0 + config_.verify_slope * k;
  if (k <= 0 || target_s_[0] <= 0) return prior;
  const size_t m = static_cast<size_t>(std::min(k, config_.k_max));
  if (target_s_[m] > 0) return std::max(1.0, target_s_[m] / target_s_[0]);
  // Not measured at this length: scale the prior by the nearest shorter measured length.
  for (size_t j = m; j-- > 1;)
    if (target_s_[j] > 0)
      return std::max(1.0, target_s_[j] / target_s_[0] * prior / (1.0 + config_.verify_slope * static_cast<double>(j)));
  return prior;
}

int DraftLengthPolicy::best_k_at(double a) const {
  const double c = draft_cost();
  int best = 0;
  double best_rate = 1.0;
  for (int k = 1; k <= config_.k_max; ++k) {
    const double rate = expected_rate(a, k, c, verify_cost(k));
    if (rate > best_rate * 1.02) {  // a 2% margin: the model is an estimate
      best = k;
      best_rate = rate;
    }
  }
  return best;
}

int DraftLengthPolicy::best_k() const { return best_k_at(acceptance()); }

bool DraftLengthPolicy::can_pay() const { return best_k_at(0.999) > 0; }

DraftLengthPolicy::Choice DraftLengthPolicy::next() {
  const int best = best_k();
  if (best > 0) {
    idle_steps_ = 0;
    interval_ = config_.probe_every;
    return {best, false};
  }
  if (!can_pay()) return {0, false};
  if (++idle_steps_ < interval_) return {0, false};
  idle_steps_ = 0;
  ++probes_;
  return {1, true};
}

void DraftLengthPolicy::observe(int drafted, int accepted, bool probe) {
  if (drafted <= 0) return;
  accepted = std::clamp(accepted, 0, drafted);
  successes_ = config_.decay * successes_ + accepted;
  trials_ = config_.decay * trials_ + accepted + (accepted < drafted ? 1 : 0);
  // A rejected probe doubles the wait for the next one, an accepted one halves it (once
  // speculation pays again, next() resets it).
  if (probe)
    interval_ = accepted == drafted ? std::max(config_.probe_every, interval_ / 2)
                                    : static_cast<int>(std::min<int64_t>(int64_t{interval_} * 2, config_.probe_max));
}

namespace {
void average_in(double& avg, double seconds, double weight) {
  if (!(seconds > 0)) return;
  avg = avg > 0 ? (1.0 - weight) * avg + weight * seconds : seconds;
}
}  // namespace

void DraftLengthPolicy::observe_probe(double draft_seconds) {
  if (!config_.measure_costs || !(config_.probe_budget > 0) || target_s_[0] <= 0) return;
  const double cost = draft_seconds / target_s_[0] + verify_cost(1) - 1.0;  // in target steps
  const double wait = std::min<double>(config_.probe_max, std::ceil(cost / config_.probe_budget));
  interval_ = std::max(interval_, static_cast<int>(wait));
}

void DraftLengthPolicy::observe_target(int tokens, double seconds) {
  if (!config_.measure_costs || tokens < 1 || tokens > config_.k_max + 1) return;
  average_in(target_s_[static_cast<size_t>(tokens) - 1], seconds, config_.cost_weight);
}

void DraftLengthPolicy::observe_draft(int tokens, double seconds) {
  if (!config_.measure_costs || tokens < 1 || tokens > config_.k_max + 1) return;
  const size_t m = static_cast<size_t>(tokens) - 1;
  if (m == 0) {
    average_in(draft_s_, seconds, config_.cost_weight);
  } else if (target_s_[m] > 0 && target_s_[0] > 0) {
    average_in(draft_s_, seconds * target_s_[0] / target_s_[m], config_.cost_weight);
  }
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
  auto dseq = draft_kv_.create_sequence();
  struct Cleanup {
    KvCache& a; KvCache::SeqId as; KvCache& b; KvCache::SeqId& bs;
    ~Cleanup() { a.free_sequence(as); b.free_sequence(bs); }
  } cleanup{target_kv_, tseq, draft_kv_, dseq};
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };

  // The target holds K/V for every committed token except `pending`, the newest one; the
  // draft for those except `draft_lag`, which it computes when it drafts next.
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
  std::vector<int32_t> draft_lag;
  if (policy) draft_lag.assign(head.begin(), head.end());  // the draft may never be needed
  else FRUGAL_TRY(prefill(draft_, draft_kv_, dseq, head));
  int32_t pending = prompt.back();
  std::vector<int32_t> out;
  std::vector<Distribution> q(k);
  std::vector<int32_t> drafted(k);

  while (static_cast<int>(out.size()) < max_tokens) {
    // Draft k tokens: the first forward also catches up on draft_lag. Nothing is
    // committed to the draft cache until the target has verified it.
    const DraftLengthPolicy::Choice choice = policy ? policy->next() : DraftLengthPolicy::Choice{k, false};
    const int32_t n_draft = std::min<int32_t>(choice.k, max_tokens - static_cast<int32_t>(out.size()));
    const size_t window = policy ? static_cast<size_t>(policy->config().probe_window) : 0;
    if (n_draft > 0 && choice.probe && window > 0 && draft_lag.size() > window) {
      // A probe after a long pause: restart the draft's context from the recent tokens.
      draft_kv_.free_sequence(dseq);
      dseq = draft_kv_.create_sequence();
      draft_lag.erase(draft_lag.begin(), draft_lag.end() - static_cast<std::ptrdiff_t>(window));
    }
    if (choice.probe && n_draft > 0) stats_.probes++;
    std::vector<int32_t> feed = draft_lag;
    feed.push_back(pending);
    std::vector<int32_t> draft_computed;  // tokens whose K/V the draft wrote this round
    int32_t dpos = draft_kv_.committed(dseq);
    double draft_seconds = 0;
    for (int32_t i = 0; i < n_draft; ++i) {
      FRUGAL_TRY(draft_kv_.reserve(dseq, dpos + static_cast<int32_t>(feed.size())));
      std::vector<BatchEntry> b;
      for (size_t j = 0; j < feed.size(); ++j)
        b.push_back({feed[j], dpos + static_cast<int32_t>(j), dseq, j + 1 == feed.size()});
      const auto t0 = Clock::now();
      FRUGAL_TRY(draft_.forward(b, draft_kv_, logits));
      const double ds = since(t0);
      draft_seconds += ds;
      if (policy) policy->observe_draft(static_cast<int>(feed.size()), ds);
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
    const auto t0 = Clock::now();
    FRUGAL_TRY(target_.forward(b, target_kv_, logits));
    if (policy) policy->observe_target(n_draft + 1, since(t0));
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
    if (policy) policy->observe(n_draft, accepted, choice.probe);
    if (policy && choice.probe && n_draft > 0) policy->observe_probe(draft_seconds);
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
