#pragma once
// Engine: continuous-batching text generation over one model on the CPU.
//
// Threading contract
//  - One scheduler thread owns the model, the KV cache and every request's state. It
//    runs decode steps: requests join and leave between steps; each step batches one
//    token per decoding sequence plus prompt chunks of sequences still prefilling (at
//    most prefill_chunk tokens' work each, attention included), so a long prompt never
//    stalls streams: their inter-token latency stays about one chunk's time.
//  - submit() and RequestHandle::cancel() may be called from any thread.
//  - Callbacks run ON THE ENGINE THREAD, between steps. They must not block and must not
//    call back into the engine synchronously except cancel(): post the event to your own
//    executor (e.g. asio::post to the session's strand) and return. A slow callback
//    stalls every stream in the batch.
//  - Exactly one final event is delivered per submitted request, after which the callback
//    is never called again and the engine holds no reference to it.
//  - With a draft model (EngineConfig::draft) each step first runs the draft: it mirrors
//    the prompt chunks of the step and proposes up to draft_tokens tokens per decoding
//    sequence (one batched draft forward per proposal round); the target then verifies
//    every sequence's proposals in the step's single batched forward. Greedy output is
//    exactly target-only decoding; sampling uses rejection sampling (see speculative.h).
//    A request whose draft cache runs out of room continues without a draft. With
//    draft_adaptive, the draft runs only while speculation pays (or for a probe).
//
// The engine is HTTP-agnostic: token ids in, token ids + text pieces out.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backends/engine/grammar.h"
#include "backends/engine/kv_cache.h"
#include "backends/engine/model.h"
#include "backends/engine/sampler.h"
#include "backends/engine/speculative.h"
#include "core/error.h"

namespace frugal::engine {

// Turns token ids into text for streaming and stop sequences (adapter over the format
// layer's tokenizer). piece() returns raw bytes, possibly an incomplete UTF-8 sequence.
class TokenText {
 public:
  virtual ~TokenText() = default;
  virtual std::string piece(int32_t token) const = 0;
  virtual bool is_end_of_generation(int32_t token) const = 0;
};

struct EngineConfig {
  int n_threads = 0;                      // 0: usable_cpus() (affinity mask, cgroup quota)
  size_t kv_cache_bytes = 256u << 20;     // memory bound for the KV cache
  int32_t kv_block_size = 16;             // positions per KV block
  int32_t max_batch_tokens = 256;         // tokens per step (decode + prefill chunks)
  // Prompt work per sequence per step, in tokens of matmul work: a prompt token at
  // position p also attends to p positions, which counts as p * attention_cost_per_position
  // tokens (prefill_attention_cost below), so chunks shrink late in a long prompt and the
  // step time (running streams' inter-token latency) stays about that of prefill_chunk
  // early tokens. At least one prompt token per step.
  int32_t prefill_chunk = 64;
  // Cost of one attended position relative to one token's matmuls, as a multiple of the
  // ratio of their multiply-adds (f32 attention vs int8 matmuls). 0: chunks count tokens only.
  double attention_cost_weight = 4.0;
  int32_t max_running = 32;               // sequences in the running batch
  // Speculative decoding: the draft proposes draft_tokens tokens per decoding sequence
  // and step; the target verifies them in the same batched forward. Null: off.
  std::shared_ptr<const Model> draft;
  int32_t draft_tokens = 4;
  // Adaptive: each decoding sequence drafts k <= draft_tokens tokens per step, k chosen by
  // one DraftLengthPolicy (speculative.h) that the engine keeps for all its requests from
  // the measured acceptance and the measured costs of the draft and of verifying; 0 where
  // speculation does not pay: the target then decodes alone, the draft computes nothing
  // (prompts included) and is probed with one token after exponentially growing waits.
  bool draft_adaptive = false;
  // The adaptive policy's settings (null: k_max = draft_tokens, the draft's cost prior
  // from the models' sizes, timings measured). Tests fix the costs here.
  std::optional<DraftPolicyConfig> draft_policy;
};

struct GenerateRequest {
  std::vector<int32_t> prompt;            // token ids (chat template already applied)
  SamplingParams sampling;
  int32_t max_tokens = 256;
  std::vector<std::string> stop;          // matched on detokenised text
  bool logprobs = false;
  int32_t top_logprobs = 0;               // 0..20, when logprobs
  std::optional<uint64_t> seed;           // same seed -> same tokens
  bool ignore_eos = false;
  // Constrained decoding: only tokens that keep the output a prefix of the grammar's
  // language are sampled, and the request stops (kStop) once the output is complete.
  // Used only on the engine thread after submit. Such requests are never speculated.
  std::shared_ptr<Grammar> grammar;
};

enum class FinishReason { kStop, kLength, kCancelled, kError };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "error"

struct GenerateUsage {
  int32_t prompt_tokens = 0;
  int32_t cached_prompt_tokens = 0;       // served from the prefix cache
  int32_t completion_tokens = 0;
};

struct TokenEvent {
  int32_t token = -1;
  std::string text;                       // newly releasable text (may be empty)
  float logprob = 0.0f;                   // raw-distribution logprob of the token
  std::vector<TokenLogprob> top_logprobs; // when requested
  uint64_t step = 0;                      // engine step that produced it
};

struct FinalEvent {
  FinishReason reason = FinishReason::kStop;
  std::string text;                       // held-back text flushed at the end
  GenerateUsage usage;
  Confidence confidence;
  std::optional<Error> error;             // when reason == kError
  uint64_t step = 0;
};

struct GenerateEvent {
  bool is_final = false;
  TokenEvent token;                       // when !is_final
  FinalEvent final;                       // when is_final
};

using EventCallback = std::function<void(const GenerateEvent&)>;

// Embeddings of several inputs, computed between decode steps in one batched forward
// (no output head) over all of them, pooled per Model::config().pooling, L2-normalised.
struct EmbedRequest {
  std::vector<std::vector<int32_t>> inputs;  // token ids, each input non-empty
  // Set from any thread to stop the job between its forward batches.
  std::shared_ptr<std::atomic<bool>> cancelled;
};
// Called once, on the engine thread (or the caller's after shutdown): one vector of
// n_embd floats per input, in order; or the error (kUnavailable when the KV cache has no
// room for an input, kCancelled).
using EmbedCallback = std::function<void(Result<std::vector<std::vector<float>>>)>;

struct EngineStats {
  uint64_t steps = 0;
  uint64_t prefill_tokens_computed = 0;   // prompt tokens run through the model
  uint64_t prompt_tokens_reused = 0;      // prompt tokens attached from cached KV blocks
  // Generated tokens fed back through the model (a request's last token never is, so
  // without a draft a request adds completion_tokens - 1).
  uint64_t decode_tokens = 0;
  uint64_t requests_finished = 0;         // every request that ended, cancelled or failed too
  uint64_t requests_cancelled = 0;
  // Speculative decoding (with a draft model): per sequence and step, `drafted` tokens
  // proposed, `accepted` of them kept, `spec_generated` tokens emitted by
  // `spec_verifies` sequence-verifications (one target row block each).
  uint64_t draft_forwards = 0;
  uint64_t spec_verifies = 0;
  uint64_t drafted = 0;
  uint64_t accepted = 0;
  uint64_t spec_generated = 0;
  uint64_t draft_probes = 0;              // adaptive: single-token probes while speculation did not pay
  double acceptance_rate() const { return drafted ? static_cast<double>(accepted) / drafted : 0.0; }
  // Tokens a sequence gains per target forward when it speculates (1.0 = no gain).
  double tokens_per_verify() const { return spec_verifies ? static_cast<double>(spec_generated) / spec_verifies : 0.0; }
  int32_t running = 0;
  int32_t waiting = 0;
  KvCacheStats kv;
  KvCacheStats draft_kv;                  // zeros without a draft model
};

class ForwardPass;
class ThreadPool;

// One attended position's cost in tokens of matmul work for this model:
// weight * (2 * n_layer * q_dim multiply-adds for q.k and p.v) / (the layers' weight
// elements, each one multiply-add per token).
double prefill_attention_cost(const Model& model, double weight);

class Engine {
 public:
  class Handle {
   public:
    Handle() = default;
    // Asks the engine to stop the request; its blocks are freed before the next step and
    // a final event with FinishReason::kCancelled follows (unless it already finished).
    void cancel() const;
    uint64_t id() const { return id_; }

   private:
    friend class Engine;
    struct Shared;
    std::shared_ptr<Shared> shared_;
    uint64_t id_ = 0;
  };

  static Result<std::unique_ptr<Engine>> create(std::shared_ptr<const Model> model, EngineConfig config,
                                                std::shared_ptr<const TokenText> text);
  ~Engine();  // cancels what is left (final events delivered) and joins the thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // After shutdown() the callback receives a final kCancelled event at once, on the
  // calling thread.
  Handle submit(GenerateRequest request, EventCallback callback);
  // Queues an embeddings job; it runs on the engine thread before the next decode step.
  void embed(EmbedRequest request, EmbedCallback callback);
  // Cancels everything (final events delivered) and joins the scheduler thread.
  // Idempotent; the destructor calls it. Not from a callback.
  void shutdown();
  // Snapshot as of the end of the last step (or the last cancellation).
  EngineStats stats() const;
  const Model& model() const { return *model_; }
  // The configuration in effect: defaults resolved (n_threads > 0) and limits clamped.
  const EngineConfig& config() const { return config_; }

 private:
  struct Request;
  Engine(std::shared_ptr<const Model> model, EngineConfig config, std::shared_ptr<const TokenText> text);
  void run();
  void step();
  void admit();
  void finish(Request& r, FinishReason reason, std::optional<Error> error = std::nullopt);
  void emit_token(Request& r, const SampledToken& t);
  // Records a generated token and emits it; returns false once the request finished.
  bool take_token(Request& r, const SampledToken& t);
  // Samples a request's next token, within its grammar if it has one (token -1: none allowed).
  SampledToken sample(Request& r, std::span<const float> logits);
  void publish_stats();
  // Prompt tokens of a chunk starting at position `start` that fit in prefill_chunk.
  int32_t chunk_tokens(int32_t start, int32_t remaining) const;
  struct EmbedJob {
    EmbedRequest req;
    EmbedCallback cb;
  };
  Result<std::vector<std::vector<float>>> run_embedding(const EmbedRequest& req);
  struct Slot;
  // Speculation: the draft mirrors prompt chunks and proposes tokens for the decoding
  // slots (their n_draft may shrink); then the target's rows verify them.
  void run_draft(std::vector<Slot>& slots);
  void verify(Request& r, const Slot& s, std::span<const float> rows);
  void drop_draft(Request& r);

  std::shared_ptr<const Model> model_;
  EngineConfig config_;
  std::shared_ptr<const TokenText> text_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ForwardPass> forward_;
  std::optional<KvCache> kv_;
  double attention_cost_per_position_ = 0;  // in tokens of matmul work (prefill_attention_cost)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Request>> incoming_;  // guarded by mu_
  std::deque<EmbedJob> embed_jobs_;                // guarded by mu_
  bool stop_ = false;                              // guarded by mu_
  EngineStats published_;                          // guarded by mu_
  std::atomic<uint64_t> next_id_{1};

  // Engine-thread state.
  std::deque<std::unique_ptr<Request>> waiting_;
  std::vector<std::unique_ptr<Request>> running_;
  EngineStats stats_;
  std::vector<float> logits_;
  std::vector<float> hidden_;  // embeddings: (batch, n_embd)
  // Draft model for speculative decoding (null: off), its own KV cache and logits.
  std::unique_ptr<ForwardPass> draft_forward_;
  std::optional<KvCache> draft_kv_;
  std::vector<float> draft_logits_;
  std::optional<DraftLengthPolicy> draft_policy_;  // EngineConfig::draft_adaptive
  std::mutex join_mu_;  // shutdown() from two threads joins once
  std::thread thread_;
};

}  // namespace frugal::engine
