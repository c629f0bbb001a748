#include "backends/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "backends/engine/forward.h"
#include "backends/engine/speculative.h"
#include "backends/engine/thread_pool.h"
#include "core/cpus.h"

namespace frugal::engine {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "error";
}

double prefill_attention_cost(const Model& model, double weight) {
  const ModelConfig& c = model.config();
  double macs = 0;
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = model.layer(l);
    for (const Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      macs += static_cast<double>(w->n_in) * static_cast<double>(w->n_out);
  }
  if (macs <= 0) return 0;
  return weight * 2.0 * c.n_layer * static_cast<double>(c.q_dim()) / macs;
}

int32_t Engine::chunk_tokens(int32_t start, int32_t remaining) const {
  const double a = attention_cost_per_position_;
  double cost = 0;
  int32_t n = 0;
  // Token i of the chunk (position start + i) costs 1 + a * (start + i + 1).
  while (n < remaining) {
    cost += 1.0 + a * static_cast<double>(start + n + 1);
    if (n > 0 && cost > config_.prefill_chunk) break;
    ++n;
  }
  return n;
}

struct Engine::Handle::Shared {
  std::atomic<bool> cancelled{false};
};

void Engine::Handle::cancel() const {
  if (shared_) shared_->cancelled.store(true, std::memory_order_relaxed);
}

struct Engine::Slot {
  Request* r;
  int32_t n;        // prompt tokens in the batch (prefill); 1 for a decode
  bool decode;
  bool sample;      // whose logits row is consumed
  int32_t n_draft;  // decode: proposals verified in this batch (rows 1 + n_draft)
};

struct Engine::Request {
  uint64_t id = 0;
  GenerateRequest req;
  EventCallback cb;
  std::shared_ptr<Handle::Shared> shared;
  std::optional<KvCache::SeqId> seq;
  int32_t prefilled = 0;     // prompt positions with committed K/V
  int32_t cached = 0;        // of which attached from the prefix cache
  std::optional<Sampler> sampler;
  std::optional<GrammarMatcher> grammar;
  StopMatcher stop;
  ConfidenceAccumulator confidence;
  int32_t next_token = -1;   // sampled, to be fed at the next step
  int32_t generated = 0;
  bool done = false;
  // Speculation. The draft cache holds K/V for the target's committed tokens except
  // `draft_lag` (committed on the target, not yet computed by the draft).
  std::optional<KvCache::SeqId> dseq;
  int32_t dprefilled = 0;            // prompt positions with draft K/V
  std::vector<int32_t> draft_lag;
  std::vector<int32_t> drafted;      // this step's proposals
  std::vector<Distribution> q;       // their draft distributions
  std::vector<int32_t> dcomputed;    // tokens whose draft K/V this step wrote
  bool probing = false;              // this step's proposal is the adaptive policy's probe
  double probe_seconds = 0;          // its draft forward's time, when it ran alone

  Request(GenerateRequest r, EventCallback c) : req(std::move(r)), cb(std::move(c)), stop(req.stop) {}
  bool prefilling() const { return prefilled < static_cast<int32_t>(req.prompt.size()); }
};

Result<std::unique_ptr<Engine>> Engine::create(std::shared_ptr<const Model> model, EngineConfig config,
                                               std::shared_ptr<const TokenText> text) {
  if (model == nullptr || text == nullptr) return make_error(ErrorKind::kInvalidRequest, "engine: model and text are required");
  if (config.draft != nullptr && config.draft->config().n_vocab != model->config().n_vocab)
    return make_error(ErrorKind::kInvalidRequest, "engine: the draft model's vocabulary differs from the target's");
  if (config.n_threads <= 0) config.n_threads = usable_cpus();
  config.kv_block_size = std::max(1, config.kv_block_size);
  config.prefill_chunk = std::max(1, config.prefill_chunk);
  config.attention_cost_weight = std::max(0.0, config.attention_cost_weight);
  config.max_running = std::max(1, config.max_running);
  config.max_batch_tokens = std::max(config.max_batch_tokens, config.max_running + 1);
  config.draft_tokens = std::max(1, config.draft_tokens);
  const KvCacheShape tshape = kv_shape_for(model->config(), config.kv_block_size);
  size_t target_bytes = config.kv_cache_bytes;
  std::optional<KvCache> draft_kv;
  if (config.draft != nullptr) {
    // The draft needs the same positions as the target: split the bound in proportion.
    const KvCacheShape dshape = kv_shape_for(config.draft->config(), config.kv_block_size);
    const double tb = static_cast<double>(KvCache::bytes_per_block(tshape));
    const double db = static_cast<double>(KvCache::bytes_per_block(dshape));
    const size_t draft_bytes = static_cast<size_t>(static_cast<double>(config.kv_cache_bytes) * db / (tb + db));
    target_bytes = config.kv_cache_bytes - draft_bytes;
    auto dkv = KvCache::create(dshape, draft_bytes);
    if (!dkv.ok()) return std::move(dkv).error();
    draft_kv.emplace(std::move(dkv).value());
  }
  auto kv = KvCache::create(tshape, target_bytes);
  if (!kv.ok()) return std::move(kv).error();
  std::unique_ptr<Engine> e(new Engine(std::move(model), config, std::move(text)));
  e->kv_.emplace(std::move(kv).value());
  if (config.draft != nullptr) {
    e->draft_forward_ = make_cpu_forward(config.draft, e->pool_.get());
    e->draft_kv_ = std::move(draft_kv);
    if (config.draft_adaptive)
      e->draft_policy_.emplace(config.draft_policy.value_or(DraftPolicyConfig{
          .k_max = config.draft_tokens, .draft_cost = draft_cost_estimate(*e->model_, *config.draft)}));
  }
  e->stats_.kv = e->kv_->stats();
  if (e->draft_kv_) e->stats_.draft_kv = e->draft_kv_->stats();
  e->published_ = e->stats_;
  e->thread_ = std::thread([p = e.get()] { p->run(); });
  return e;
}

Engine::Engine(std::shared_ptr<const Model> model, EngineConfig config, std::shared_ptr<const TokenText> text)
    : model_(std::move(model)), config_(config), text_(std::move(text)),
      pool_(std::make_unique<ThreadPool>(config.n_threads)),
      forward_(make_cpu_forward(model_, pool_.get())),
      attention_cost_per_position_(prefill_attention_cost(*model_, config_.attention_cost_weight)) {}

Engine::~Engine() { shutdown(); }

void Engine::shutdown() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  std::lock_guard join_lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

Engine::Handle Engine::submit(GenerateRequest request, EventCallback callback) {
  auto r = std::make_unique<Request>(std::move(request), std::move(callback));
  r->id = next_id_.fetch_add(1);
  r->shared = std::make_shared<Handle::Shared>();
  Handle h;
  h.shared_ = r->shared;
  h.id_ = r->id;
  {
    std::unique_lock lock(mu_);
    if (stop_) {
      lock.unlock();
      GenerateEvent ev;
      ev.is_final = true;
      ev.final.reason = FinishReason::kCancelled;
      ev.final.usage.prompt_tokens = static_cast<int32_t>(r->req.prompt.size());
      r->cb(ev);
      return h;
    }
    incoming_.push_back(std::move(r));
  }
  cv_.notify_all();
  return h;
}

void Engine::embed(EmbedRequest request, EmbedCallback callback) {
  {
    std::unique_lock lock(mu_);
    if (!stop_) {
      embed_jobs_.push_back(EmbedJob{std::move(request), std::move(callback)});
      lock.unlock();
      cv_.notify_all();
      return;
    }
  }
  callback(make_error(ErrorKind::kCancelled, "the engine is shutting down"));
}

Result<std::vector<std::vector<float>>> Engine::run_embedding(const EmbedRequest& req) {
  const ModelConfig& c = model_->config();
  const int64_t E = c.n_embd;
  const Pooling pooling = c.pooling;
  std::vector<std::vector<double>> acc(req.inputs.size(), std::vector<double>(static_cast<size_t>(E), 0.0));
  struct Member {
    size_t input;
    KvCache::SeqId seq;
  };
  std::vector<Member> group;
  auto free_group = [&] {
    for (const Member& m : group) kv_->free_sequence(m.seq);
    group.clear();
  };
  // Groups of inputs whose KV fits at once; each group in forward batches of up to
  // max_batch_tokens entries, every sequence's positions in order. The blocks are never
  // committed (no prefix reuse): they return to the free list when the group is done.
  size_t next = 0;
  std::vector<BatchEntry> batch;
  std::vector<size_t> owner;  // batch entry -> index into group
  while (next < req.inputs.size()) {
    while (next < req.inputs.size()) {
      const KvCache::SeqId seq = kv_->create_sequence();
      if (!kv_->reserve(seq, static_cast<int32_t>(req.inputs[next].size()))) {
        kv_->free_sequence(seq);
        if (group.empty())
          return make_error(ErrorKind::kUnavailable, "the engine's KV cache has no room for an input of " +
                                                         std::to_string(req.inputs[next].size()) + " tokens now");
        break;
      }
      group.push_back(Member{next++, seq});
    }
    auto flush = [&]() -> Result<void> {
      if (batch.empty()) return {};
      if (req.cancelled && req.cancelled->load()) return make_error(ErrorKind::kCancelled, "cancelled");
      FRUGAL_TRY(forward_->hidden(batch, *kv_, hidden_));
      for (size_t b = 0; b < batch.size(); ++b) {
        const Member& m = group[owner[b]];
        const int32_t n = static_cast<int32_t>(req.inputs[m.input].size());
        const bool take = pooling == Pooling::kMean || (pooling == Pooling::kCls && batch[b].pos == 0) ||
                          (pooling == Pooling::kLast && batch[b].pos == n - 1);
        if (!take) continue;
        const float* h = hidden_.data() + b * E;
        std::vector<double>& a = acc[m.input];
        for (int64_t i = 0; i < E; ++i) a[static_cast<size_t>(i)] += h[i];
      }
      batch.clear();
      owner.clear();
      return {};
    };
    for (size_t g = 0; g < group.size(); ++g) {
      const std::vector<int32_t>& tokens = req.inputs[group[g].input];
      for (size_t p = 0; p < tokens.size(); ++p) {
        batch.push_back(BatchEntry{tokens[p], static_cast<int32_t>(p), group[g].seq, false});
        owner.push_back(g);
        if (static_cast<int32_t>(batch.size()) >= config_.max_batch_tokens) {
          if (auto r = flush(); !r) {
            free_group();
            return std::move(r).error();
          }
        }
      }
    }
    auto r = flush();
    free_group();
    if (!r) return std::move(r).error();
  }
  std::vector<std::vector<float>> out(req.inputs.size());
  for (size_t i = 0; i < acc.size(); ++i) {
    std::vector<double>& a = acc[i];
    if (pooling == Pooling::kMean)
      for (double& v : a) v /= static_cast<double>(req.inputs[i].size());
    double norm = 0;
    for (double v : a) norm += v * v;
    norm = std::sqrt(norm);
    out[i].resize(static_cast<size_t>(E));
    for (int64_t k = 0; k < E; ++k)
      out[i][static_cast<size_t>(k)] = static_cast<float>(norm > 0 ? a[static_cast<size_t>(k)] / norm : 0.0);
  }
  return out;
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mu_);
  return published_;
}

void Engine::publish_stats() {
  auto live = [](const auto& q) {
    return static_cast<int32_t>(std::count_if(q.begin(), q.end(), [](const auto& r) { return !r->done; }));
  };
  stats_.running = live(running_);
  stats_.waiting = live(waiting_);
  stats_.kv = kv_->stats();
  if (draft_kv_) stats_.draft_kv = draft_kv_->stats();
  std::lock_guard lock(mu_);
  published_ = stats_;
}

void Engine::finish(Request& r, FinishReason reason, std::optional<Error> error) {
  if (r.done) return;
  r.done = true;
  if (r.seq) {
    kv_->free_sequence(*r.seq);
    r.seq.reset();
  }
  drop_draft(r);
  stats_.requests_finished++;
  if (reason == FinishReason::kCancelled) stats_.requests_cancelled++;
  GenerateEvent ev;
  ev.is_final = true;
  ev.final.reason = reason;
  ev.final.text = reason == FinishReason::kCancelled ? std::string() : r.stop.flush();
  ev.final.usage.prompt_tokens = static_cast<int32_t>(r.req.prompt.size());
  ev.final.usage.cached_prompt_tokens = r.cached;
  ev.final.usage.completion_tokens = r.generated;
  ev.final.confidence = r.confidence.result();
  ev.final.error = std::move(error);
  ev.final.step = stats_.steps;
  publish_stats();  // so a caller reacting to the final event sees the freed blocks
  auto cb = std::move(r.cb);
  r.cb = nullptr;
  if (cb) cb(ev);
}

void Engine::emit_token(Request& r, const SampledToken& t) {
  GenerateEvent ev;
  ev.token.token = t.token;
  ev.token.text = r.stop.feed(text_->piece(t.token));
  ev.token.logprob = t.logprob;
  if (r.req.logprobs) ev.token.top_logprobs = t.top;
  ev.token.step = stats_.steps;
  if (r.cb) r.cb(ev);
}

void Engine::admit() {
  const int32_t n_vocab = model_->config().n_vocab;
  while (!waiting_.empty() && static_cast<int32_t>(running_.size()) < config_.max_running) {
    Request& r = *waiting_.front();
    const auto& p = r.req.prompt;
    if (p.empty() || std::any_of(p.begin(), p.end(), [&](int32_t t) { return t < 0 || t >= n_vocab; })) {
      finish(r, FinishReason::kError,
             make_error(ErrorKind::kInvalidRequest, p.empty() ? "empty prompt" : "prompt token outside the vocabulary", "prompt"));
      waiting_.pop_front();
      continue;
    }
    const auto seq = kv_->create_sequence();
    const int32_t n = static_cast<int32_t>(p.size());
    // Reuse at most n-1 positions: the last prompt token is always computed for its logits.
    const int32_t cached = kv_->attach_prefix(seq, p, n - 1);
    const int32_t need = kv_->blocks_for(n + 1) - static_cast<int32_t>(kv_->block_table(seq).size());
    if (need > kv_->available_blocks()) {
      kv_->free_sequence(seq);
      if (!running_.empty()) break;  // wait for running sequences to free blocks
      finish(r, FinishReason::kError,
             make_error(ErrorKind::kUnavailable,
                        "kv cache out of memory: the prompt needs " + std::to_string(need) + " blocks of " +
                            std::to_string(kv_->block_size()) + " positions, " +
                            std::to_string(kv_->available_blocks()) + " are available",
                        {}, "kv_cache_full"));
      waiting_.pop_front();
      continue;
    }
    r.seq = seq;
    r.cached = cached;
    r.prefilled = cached;
    if (r.req.grammar) r.grammar.emplace(r.req.grammar);
    if (draft_kv_ && !r.grammar) {
      r.dseq = draft_kv_->create_sequence();
      r.dprefilled = draft_kv_->attach_prefix(*r.dseq, p, n - 1);
    }
    stats_.prompt_tokens_reused += cached;
    uint64_t seed = r.req.seed.value_or(0);
    if (!r.req.seed) {
      static thread_local std::mt19937_64 seeder{std::random_device{}()};
      seed = seeder();
    }
    r.sampler.emplace(r.req.sampling, seed, r.req.logprobs ? r.req.top_logprobs : 0, p);
    if (r.req.max_tokens <= 0) {
      finish(r, FinishReason::kLength);
      waiting_.pop_front();
      continue;
    }
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Engine::step() {
  {
    std::lock_guard lock(mu_);
    while (!incoming_.empty()) {
      waiting_.push_back(std::move(incoming_.front()));
      incoming_.pop_front();
    }
  }
  auto cancelled = [](const std::unique_ptr<Request>& r) { return r->shared->cancelled.load(std::memory_order_relaxed); };
  for (auto& r : running_)
    if (cancelled(r)) finish(*r, FinishReason::kCancelled);
  for (auto& r : waiting_)
    if (cancelled(r)) finish(*r, FinishReason::kCancelled);
  auto is_done = [](const std::unique_ptr<Request>& r) { return r->done; };
  std::erase_if(running_, is_done);
  std::erase_if(waiting_, is_done);
  admit();

  // Build the batch: every decoding sequence's pending token (plus, when speculating,
  // the draft's proposals) first, then prompt chunks.
  std::vector<Slot> slots;
  int32_t budget = config_.max_batch_tokens;
  for (auto& rp : running_) {
    Request& r = *rp;
    if (r.prefilling()) continue;
    const int32_t pos = kv_->committed(*r.seq);
    // Propose at most what can still be emitted after the pending token's own sample.
    int32_t n_draft = 0;
    if (draft_forward_ && r.dseq) {
      DraftLengthPolicy::Choice choice{config_.draft_tokens, false};
      if (draft_policy_) choice = draft_policy_->next();
      n_draft = std::clamp(std::min(choice.k, r.req.max_tokens - r.generated - 1), 0, std::max(0, budget - 1));
      r.probing = n_draft > 0 && choice.probe;
      r.probe_seconds = 0;
      if (r.probing) stats_.draft_probes++;
      // A draft that sat out long (the prompt too, when speculation did not pay) restarts
      // its context from the recent tokens: a probe's work is bounded by probe_window, a
      // step's by max_batch_tokens.
      const size_t window = draft_policy_ ? static_cast<size_t>(choice.probe ? draft_policy_->config().probe_window
                                                                             : config_.max_batch_tokens)
                                          : 0;
      if (n_draft > 0 && window > 0 && r.draft_lag.size() > window) {
        draft_kv_->free_sequence(*r.dseq);
        r.dseq = draft_kv_->create_sequence();
        r.draft_lag.erase(r.draft_lag.begin(), r.draft_lag.end() - static_cast<std::ptrdiff_t>(window));
      }
    }
    if (n_draft > 0 && !kv_->reserve(*r.seq, pos + 1 + n_draft).ok()) n_draft = 0;
    auto res = kv_->reserve(*r.seq, pos + 1);
    if (!res.ok()) {
      finish(r, FinishReason::kError, std::move(res).error());
      continue;
    }
    slots.push_back({&r, 1, true, true, n_draft});
    budget -= 1 + n_draft;
  }
  for (auto& rp : running_) {
    Request& r = *rp;
    if (r.done || !r.prefilling() || budget <= 0) continue;
    const int32_t total = static_cast<int32_t>(r.req.prompt.size());
    const int32_t n = std::min(chunk_tokens(r.prefilled, total - r.prefilled), budget);
    auto res = kv_->reserve(*r.seq, r.prefilled + n);
    if (!res.ok()) {
      if (slots.empty()) finish(r, FinishReason::kError, std::move(res).error());
      continue;  // else: retry once running sequences have freed blocks
    }
    slots.push_back({&r, n, false, r.prefilled + n == total, 0});
    budget -= n;
  }
  std::erase_if(running_, is_done);
  if (draft_forward_) run_draft(slots);

  std::vector<BatchEntry> batch;
  for (const Slot& s : slots) {
    Request& r = *s.r;
    if (s.decode) {
      const int32_t pos = kv_->committed(*r.seq);
      batch.push_back({r.next_token, pos, *r.seq, true});
      for (int32_t i = 0; i < s.n_draft; ++i) batch.push_back({r.drafted[i], pos + 1 + i, *r.seq, true});
    } else {
      for (int32_t i = 0; i < s.n; ++i)
        batch.push_back({r.req.prompt[r.prefilled + i], r.prefilled + i, *r.seq, s.sample && i == s.n - 1});
    }
  }
  if (batch.empty()) {
    publish_stats();
    return;
  }

  const auto t0 = std::chrono::steady_clock::now();
  auto res = forward_->forward(batch, *kv_, logits_);
  stats_.steps++;
  if (draft_policy_ && slots.size() == 1 && slots[0].decode)  // one sequence's cost: the policy's unit
    draft_policy_->observe_target(1 + slots[0].n_draft,
                                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (!res.ok()) {
    for (const Slot& s : slots) finish(*s.r, FinishReason::kError, res.error());
    std::erase_if(running_, is_done);
    publish_stats();
    return;
  }
  const int32_t n_vocab = model_->config().n_vocab;
  size_t row = 0;
  for (const Slot& s : slots) {
    Request& r = *s.r;
    if (s.decode && s.n_draft > 0) {
      const size_t rows = static_cast<size_t>(s.n_draft) + 1;
      verify(r, s, std::span<const float>(logits_.data() + row * n_vocab, rows * n_vocab));
      row += rows;
      continue;
    }
    if (s.decode) {
      const int32_t fed = r.next_token;
      kv_->commit(*r.seq, {&fed, 1});
      if (r.dseq) r.draft_lag.push_back(fed);  // the draft sat this step out
      stats_.decode_tokens++;
    } else {
      kv_->commit(*r.seq, std::span<const int32_t>(r.req.prompt).subspan(r.prefilled, s.n));
      r.prefilled += s.n;
      if (r.dseq && !r.prefilling() && r.dprefilled < r.prefilled) {
        // The draft skipped (part of) the prompt: it computes the rest when it drafts.
        r.draft_lag.assign(r.req.prompt.begin() + r.dprefilled, r.req.prompt.end());
        r.dprefilled = r.prefilled;
      }
      stats_.prefill_tokens_computed += s.n;
    }
    if (!s.sample) continue;
    const std::span<const float> lg(logits_.data() + row * n_vocab, n_vocab);
    ++row;
    if (r.shared->cancelled.load(std::memory_order_relaxed)) {
      finish(r, FinishReason::kCancelled);
      continue;
    }
    const SampledToken t = sample(r, lg);
    if (t.token < 0) {
      finish(r, FinishReason::kError,
             make_error(ErrorKind::kInternal, r.grammar->grammar().overflowed()
                                                  ? "constrained decoding: the output grammar grew too large"
                                                  : "constrained decoding: no token can continue the output"));
      continue;
    }
    if (take_token(r, t)) r.next_token = t.token;
  }
  std::erase_if(running_, is_done);
  publish_stats();
}

SampledToken Engine::sample(Request& r, std::span<const float> logits) {
  if (!r.grammar) return r.sampler->sample(logits);
  r.grammar->set_budget(r.req.max_tokens - r.generated - 1);
  return r.sampler->sample(logits, *r.grammar);
}

bool Engine::take_token(Request& r, const SampledToken& t) {
  r.generated++;
  r.confidence.add(t.logprob, t.margin);
  if (!r.req.ignore_eos && text_->is_end_of_generation(t.token)) {
    finish(r, FinishReason::kStop);
    return false;
  }
  if (r.grammar && !r.grammar->accept(t.token)) {
    finish(r, FinishReason::kError, make_error(ErrorKind::kInternal, "constrained decoding: a rejected token was sampled"));
    return false;
  }
  emit_token(r, t);
  if (r.stop.stopped() || (r.grammar && r.grammar->complete())) {
    finish(r, FinishReason::kStop);
    return false;
  }
  if (r.generated >= r.req.max_tokens) {
    finish(r, FinishReason::kLength);
    return false;
  }
  return true;
}

void Engine::drop_draft(Request& r) {
  if (r.dseq) draft_kv_->free_sequence(*r.dseq);
  r.dseq.reset();
  r.draft_lag.clear();
}

void Engine::run_draft(std::vector<Slot>& slots) {
  const int32_t n_vocab = model_->config().n_vocab;
  KvCache& dkv = *draft_kv_;
  // Round 0: prompt chunks the target computes this step (so the draft keeps up with the
  // prefill) and, per speculating sequence, its lag plus the pending token.
  std::vector<BatchEntry> batch;
  struct Mirror {
    Request* r;
    int32_t from, n;
  };
  std::vector<Mirror> mirrors;
  std::vector<Slot*> drafting;
  for (Slot& s : slots) {
    Request& r = *s.r;
    if (!r.dseq || r.done) continue;
    if (!s.decode) {
      // Adaptive: the draft mirrors prompts only while speculation pays.
      if (draft_policy_ && draft_policy_->best_k() == 0) continue;
      const int32_t upto = r.prefilled + s.n;
      const int32_t from = r.dprefilled;
      if (upto <= from) continue;
      if (!dkv.reserve(*r.dseq, upto).ok()) {
        drop_draft(r);  // no room in the draft cache: this request decodes without a draft
        continue;
      }
      for (int32_t i = from; i < upto; ++i) batch.push_back({r.req.prompt[i], i, *r.dseq, false});
      mirrors.push_back({&r, from, upto - from});
      continue;
    }
    if (s.n_draft == 0) continue;
    r.dcomputed = r.draft_lag;
    r.dcomputed.push_back(r.next_token);
    const int32_t base = dkv.committed(*r.dseq);
    if (!dkv.reserve(*r.dseq, base + static_cast<int32_t>(r.dcomputed.size())).ok()) {
      s.n_draft = 0;
      continue;
    }
    for (size_t i = 0; i < r.dcomputed.size(); ++i)
      batch.push_back({r.dcomputed[i], base + static_cast<int32_t>(i), *r.dseq, i + 1 == r.dcomputed.size()});
    r.drafted.clear();
    r.q.clear();
    drafting.push_back(&s);
  }
  for (int32_t round = 0; !batch.empty(); ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    auto res = draft_forward_->forward(batch, dkv, draft_logits_);
    stats_.draft_forwards++;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (draft_policy_ && mirrors.empty() && drafting.size() == 1) {
      draft_policy_->observe_draft(static_cast<int>(batch.size()), seconds);
      // A probe (one proposal, so one round) that ran alone: its cost sets the next wait.
      if (drafting[0]->r->probing) drafting[0]->r->probe_seconds = seconds;
    }
    if (!res.ok()) {  // the draft failing must not fail the request: stop speculating
      for (const Mirror& m : mirrors) drop_draft(*m.r);
      for (Slot* s : drafting) {
        drop_draft(*s->r);
        s->n_draft = 0;
      }
      return;
    }
    for (const Mirror& m : mirrors) {
      dkv.commit(*m.r->dseq, std::span<const int32_t>(m.r->req.prompt).subspan(m.from, m.n));
      m.r->dprefilled = m.from + m.n;
    }
    mirrors.clear();
    // One proposal per drafting sequence, from its row.
    size_t row = 0;
    for (Slot* s : drafting) {
      Request& r = *s->r;
      const std::span<const float> lg(draft_logits_.data() + row * n_vocab, n_vocab);
      ++row;
      r.q.push_back(r.sampler->distribution(lg));
      r.drafted.push_back(r.sampler->greedy() ? r.q.back().tokens[0] : r.sampler->draw(r.q.back()));
    }
    // Next round: sequences that want more proposals feed their latest one.
    batch.clear();
    std::vector<Slot*> next;
    for (Slot* s : drafting) {
      Request& r = *s->r;
      if (static_cast<int32_t>(r.drafted.size()) >= s->n_draft) continue;
      const int32_t pos = dkv.committed(*r.dseq) + static_cast<int32_t>(r.dcomputed.size());
      if (!dkv.reserve(*r.dseq, pos + 1).ok()) {
        s->n_draft = static_cast<int32_t>(r.drafted.size());
        continue;
      }
      batch.push_back({r.drafted.back(), pos, *r.dseq, true});
      r.dcomputed.push_back(r.drafted.back());
      next.push_back(s);
    }
    drafting.swap(next);
  }
}

void Engine::verify(Request& r, const Slot& s, std::span<const float> rows) {
  const int32_t n_vocab = model_->config().n_vocab;
  const int32_t n = s.n_draft;
  auto row = [&](int32_t i) { return rows.subspan(static_cast<size_t>(i) * n_vocab, n_vocab); };
  // Accept the longest acceptable prefix of the proposals, then one token from the
  // target: the correction at the first rejection or a bonus after all n.
  int32_t accepted = 0;
  int32_t extra = -1;
  for (; accepted < n; ++accepted) {
    const Distribution p = r.sampler->distribution(row(accepted));
    if (r.sampler->greedy()) {
      if (p.tokens[0] != r.drafted[accepted]) {
        extra = p.tokens[0];
        break;
      }
    } else {
      const SpecDecision d = speculative_accept(p, r.q[accepted], r.drafted[accepted], r.sampler->rng());
      if (!d.accepted) {
        extra = d.token;
        break;
      }
    }
  }
  if (extra < 0) {
    const Distribution p = r.sampler->distribution(row(n));
    extra = r.sampler->greedy() ? p.tokens[0] : r.sampler->draw(p);
  }
  stats_.spec_verifies++;
  stats_.drafted += n;
  stats_.accepted += accepted;
  stats_.decode_tokens += 1 + accepted;
  if (draft_policy_) {
    draft_policy_->observe(n, accepted, r.probing);
    if (r.probing && r.probe_seconds > 0) draft_policy_->observe_probe(r.probe_seconds);
  }

  // Target: keep pending + accepted proposals, drop the rejected positions.
  std::vector<int32_t> committed{r.next_token};
  committed.insert(committed.end(), r.drafted.begin(), r.drafted.begin() + accepted);
  kv_->commit(*r.seq, committed);
  kv_->shrink(*r.seq);
  // Draft: it computed lag, pending, d_1..d_{n-1}; keep what the target committed.
  if (r.dseq) {
    std::vector<int32_t> target_new = r.draft_lag;
    target_new.insert(target_new.end(), committed.begin(), committed.end());
    const size_t keep = std::min(r.dcomputed.size(), r.draft_lag.size() + 1 + static_cast<size_t>(accepted));
    draft_kv_->commit(*r.dseq, std::span<const int32_t>(target_new).first(keep));
    draft_kv_->shrink(*r.dseq);
    r.draft_lag.assign(target_new.begin() + static_cast<std::ptrdiff_t>(keep), target_new.end());
  }
  if (r.shared->cancelled.load(std::memory_order_relaxed)) {
    finish(r, FinishReason::kCancelled);
    return;
  }
  // Emit the new tokens with the target's own logprobs (rows 0..accepted); penalties saw
  // the history as of the start of this step, as the proposals' distributions did.
  for (int32_t i = 0; i <= accepted; ++i) {
    const int32_t tok = i < accepted ? r.drafted[i] : extra;
    const SampledToken t = r.sampler->describe(row(i), tok);
    r.sampler->accept(tok);
    stats_.spec_generated++;
    if (!take_token(r, t)) return;
  }
  r.next_token = extra;
}

void Engine::run() {
  for (;;) {
    std::deque<EmbedJob> jobs;
    bool decode = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] {
        return stop_ || !incoming_.empty() || !running_.empty() || !waiting_.empty() || !embed_jobs_.empty();
      });
      if (stop_) break;
      jobs.swap(embed_jobs_);
      decode = !incoming_.empty() || !running_.empty() || !waiting_.empty();
    }
    // Embeddings run between decode steps: the running streams wait for one job at most.
    for (EmbedJob& job : jobs) job.cb(run_embedding(job.req));
    if (decode) step();
  }
  std::deque<EmbedJob> jobs;
  {
    std::lock_guard lock(mu_);
    while (!incoming_.empty()) {
      waiting_.push_back(std::move(incoming_.front()));
      incoming_.pop_front();
    }
    jobs.swap(embed_jobs_);
  }
  for (EmbedJob& job : jobs) job.cb(make_error(ErrorKind::kCancelled, "the engine is shutting down"));
  for (auto& r : running_) finish(*r, FinishReason::kCancelled);
  for (auto& r : waiting_) finish(*r, FinishReason::kCancelled);
  running_.clear();
  waiting_.clear();
}

}  // namespace frugal::engine
