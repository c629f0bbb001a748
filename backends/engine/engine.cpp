#include "backends/engine/engine.h"

#include <algorithm>
#include <random>

#include "backends/engine/forward.h"
#include "backends/engine/thread_pool.h"

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

struct Engine::Handle::Shared {
  std::atomic<bool> cancelled{false};
};

void Engine::Handle::cancel() const {
  if (shared_) shared_->cancelled.store(true, std::memory_order_relaxed);
}

struct Engine::Request {
  uint64_t id = 0;
  GenerateRequest req;
  EventCallback cb;
  std::shared_ptr<Handle::Shared> shared;
  std::optional<KvCache::SeqId> seq;
  int32_t prefilled = 0;     // prompt positions with committed K/V
  int32_t cached = 0;        // of which attached from the prefix cache
  std::optional<Sampler> sampler;
  StopMatcher stop;
  ConfidenceAccumulator confidence;
  int32_t next_token = -1;   // sampled, to be fed at the next step
  int32_t generated = 0;
  bool done = false;

  Request(GenerateRequest r, EventCallback c) : req(std::move(r)), cb(std::move(c)), stop(req.stop) {}
  bool prefilling() const { return prefilled < static_cast<int32_t>(req.prompt.size()); }
};

Result<std::unique_ptr<Engine>> Engine::create(std::shared_ptr<const Model> model, EngineConfig config,
                                               std::shared_ptr<const TokenText> text) {
  if (model == nullptr || text == nullptr) return make_error(ErrorKind::kInvalidRequest, "engine: model and text are required");
  if (config.draft != nullptr)
    return make_error(ErrorKind::kInvalidRequest, "engine: speculative decoding in the batching engine is not implemented yet");
  if (config.n_threads <= 0) config.n_threads = std::max(1u, std::thread::hardware_concurrency());
  config.kv_block_size = std::max(1, config.kv_block_size);
  config.prefill_chunk = std::max(1, config.prefill_chunk);
  config.max_running = std::max(1, config.max_running);
  config.max_batch_tokens = std::max(config.max_batch_tokens, config.max_running + 1);
  auto kv = KvCache::create(kv_shape_for(model->config(), config.kv_block_size), config.kv_cache_bytes);
  if (!kv.ok()) return std::move(kv).error();
  std::unique_ptr<Engine> e(new Engine(std::move(model), config, std::move(text)));
  e->kv_.emplace(std::move(kv).value());
  e->stats_.kv = e->kv_->stats();
  e->published_ = e->stats_;
  e->thread_ = std::thread([p = e.get()] { p->run(); });
  return e;
}

Engine::Engine(std::shared_ptr<const Model> model, EngineConfig config, std::shared_ptr<const TokenText> text)
    : model_(std::move(model)), config_(config), text_(std::move(text)),
      pool_(std::make_unique<ThreadPool>(config.n_threads)),
      forward_(make_cpu_forward(model_, pool_.get())) {}

Engine::~Engine() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
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
    std::lock_guard lock(mu_);
    incoming_.push_back(std::move(r));
  }
  cv_.notify_all();
  return h;
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

  // Build the batch: every decoding sequence's pending token first, then prompt chunks.
  struct Slot {
    Request* r;
    int32_t n;       // entries in the batch
    bool decode;
    bool sample;     // whose logits row is consumed
  };
  std::vector<BatchEntry> batch;
  std::vector<Slot> slots;
  int32_t budget = config_.max_batch_tokens;
  for (auto& rp : running_) {
    Request& r = *rp;
    if (r.prefilling()) continue;
    const int32_t pos = kv_->committed(*r.seq);
    auto res = kv_->reserve(*r.seq, pos + 1);
    if (!res.ok()) {
      finish(r, FinishReason::kError, std::move(res).error());
      continue;
    }
    batch.push_back({r.next_token, pos, *r.seq, true});
    slots.push_back({&r, 1, true, true});
    --budget;
  }
  for (auto& rp : running_) {
    Request& r = *rp;
    if (r.done || !r.prefilling() || budget <= 0) continue;
    const int32_t total = static_cast<int32_t>(r.req.prompt.size());
    const int32_t n = std::min({config_.prefill_chunk, total - r.prefilled, budget});
    auto res = kv_->reserve(*r.seq, r.prefilled + n);
    if (!res.ok()) {
      if (batch.empty()) finish(r, FinishReason::kError, std::move(res).error());
      continue;  // else: retry once running sequences have freed blocks
    }
    const bool last = r.prefilled + n == total;
    for (int32_t i = 0; i < n; ++i)
      batch.push_back({r.req.prompt[r.prefilled + i], r.prefilled + i, *r.seq, last && i == n - 1});
    slots.push_back({&r, n, false, last});
    budget -= n;
  }
  std::erase_if(running_, is_done);
  if (batch.empty()) {
    publish_stats();
    return;
  }

  auto res = forward_->forward(batch, *kv_, logits_);
  stats_.steps++;
  if (!res.ok()) {
    for (const Slot& s : slots) finish(*s.r, FinishReason::kError, res.error());
    std::erase_if(running_, is_done);
    publish_stats();
    return;
  }
  const int32_t n_vocab = model_->config().n_vocab;
  size_t row = 0, entry = 0;
  for (const Slot& s : slots) {
    Request& r = *s.r;
    std::vector<int32_t> fed;
    for (int32_t i = 0; i < s.n; ++i) fed.push_back(batch[entry + i].token);
    entry += s.n;
    kv_->commit(*r.seq, fed);
    if (s.decode) {
      stats_.decode_tokens++;
    } else {
      r.prefilled += s.n;
      stats_.prefill_tokens_computed += s.n;
    }
    if (!s.sample) continue;
    const std::span<const float> lg(logits_.data() + row * n_vocab, n_vocab);
    ++row;
    if (r.shared->cancelled.load(std::memory_order_relaxed)) {
      finish(r, FinishReason::kCancelled);
      continue;
    }
    const SampledToken t = r.sampler->sample(lg);
    r.generated++;
    r.confidence.add(t.logprob, t.margin);
    if (!r.req.ignore_eos && text_->is_end_of_generation(t.token)) {
      finish(r, FinishReason::kStop);
      continue;
    }
    emit_token(r, t);
    if (r.stop.stopped()) {
      finish(r, FinishReason::kStop);
    } else if (r.generated >= r.req.max_tokens) {
      finish(r, FinishReason::kLength);
    } else {
      r.next_token = t.token;
    }
  }
  std::erase_if(running_, is_done);
  publish_stats();
}

void Engine::run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !incoming_.empty() || !running_.empty() || !waiting_.empty(); });
      if (stop_) break;
    }
    step();
  }
  {
    std::lock_guard lock(mu_);
    while (!incoming_.empty()) {
      waiting_.push_back(std::move(incoming_.front()));
      incoming_.pop_front();
    }
  }
  for (auto& r : running_) finish(*r, FinishReason::kCancelled);
  for (auto& r : waiting_) finish(*r, FinishReason::kCancelled);
  running_.clear();
  waiting_.clear();
}

}  // namespace frugal::engine
