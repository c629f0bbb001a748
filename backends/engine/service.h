#pragma once
// EngineService: one loaded GGUF model (plus an optional draft model for speculative
// decoding), its tokenizer and chat template, and the continuous-batching Engine that
// serves it — shared by every gateway worker. It also owns the mapping from the
// gateway's ChatRequest to an engine GenerateRequest (chat template, tokens, sampling),
// rejecting with a 400 what the engine cannot do (tools, images, n > 1, ...).
//
// Threading: immutable after load() apart from the Engine, whose submit() and stats()
// are thread-safe. prepare() may run concurrently on any thread. Engine callbacks run on
// the engine thread (see engine.h); EngineBackend posts them to the worker.
//
// Lifetime: destroying the service cancels whatever is still running (final events are
// delivered) and joins the engine thread.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "backends/engine/chat_constraints.h"
#include "backends/engine/engine.h"
#include "backends/engine/format/chat_template.h"
#include "backends/engine/format/tokenizer.h"
#include "backends/engine/model.h"
#include "backends/engine/token_text.h"
#include "core/chat.h"
#include "core/embeddings.h"
#include "core/error.h"

namespace frugal::engine {

struct ServiceConfig {
  std::string model_path;             // GGUF file
  std::string draft_model_path;       // empty: no speculative decoding
  int threads = 0;                    // compute threads; 0 = one per core
  size_t kv_memory_bytes = 512u << 20;  // KV cache bound (target; the draft gets its share)
  int32_t context_length = 0;         // prompt + completion limit; 0 = the model's own
  int32_t max_batch = 32;             // sequences decoded together
  int32_t draft_tokens = 4;           // k: tokens the draft proposes per verify step
  int32_t prefill_chunk = 64;         // EngineConfig::prefill_chunk
  double attention_cost_weight = 4.0; // EngineConfig::attention_cost_weight
  int32_t default_max_tokens = 4096;  // a request without max_tokens; 0 = the rest of the context
};

// A chat request ready for the engine.
struct PreparedChat {
  GenerateRequest gen;
  bool stream = false;
  bool logprobs = false;  // render OpenAI `logprobs` (with gen.top_logprobs alternatives)
  ToolOutput tools = ToolOutput::kNone;
};

// An embeddings request ready for the engine.
struct PreparedEmbeddings {
  EmbedRequest req;
  int64_t prompt_tokens = 0;  // over every input
  bool base64 = false;
};

class EngineService {
 public:
  // Loads the model(s) and starts the engine thread. Errors name the file: unreadable
  // or invalid GGUF, unsupported architecture, draft vocabulary differing from the
  // target's, a KV bound too small for one block.
  static Result<std::shared_ptr<EngineService>> load(const ServiceConfig& cfg);
  ~EngineService();
  EngineService(const EngineService&) = delete;
  EngineService& operator=(const EngineService&) = delete;

  // The name a GGUF path is served under: its file name without ".gguf"
  // ("/m/llama-2-tiny-random.gguf" -> "llama-2-tiny-random").
  static std::string model_name_for(std::string_view path);

  const std::string& model_name() const { return model_name_; }
  int32_t context_length() const { return context_length_; }
  const ServiceConfig& config() const { return cfg_; }
  const Tokenizer& tokenizer() const { return text_->tokenizer(); }
  const TokenText& text() const { return *text_; }
  const ChatTemplate& chat_template() const { return template_; }
  // The vocabulary's trie for constrained decoding (grammar.h).
  const std::shared_ptr<const VocabTrie>& vocab() const { return vocab_; }
  // Compiled grammars shared by requests for the same output (see chat_constraints.h).
  size_t cached_grammars() const { return grammars_.size(); }
  bool speculative() const { return draft_ != nullptr; }

  // Maps an OpenAI chat request onto the engine. kInvalidRequest (HTTP 400, `param`
  // naming the field, code "unsupported_parameter" for features the engine lacks) for
  // images, n > 1, logit_bias, JSON schemas outside the supported subset
  // (json_schema_grammar.h), stop strings together with constrained output, and prompts
  // that do not fit the context. response_format json_object / json_schema and tools
  // (tool_choice other than none) compile a grammar for constrained decoding; the tools
  // are described to the model in a system message, and earlier tool calls and tool
  // results in the conversation are rendered as text. Reads `req.root` for the
  // non-OpenAI sampling extensions top_k, min_p and repetition_penalty (as vLLM does).
  Result<PreparedChat> prepare(const ChatRequest& req) const;

  // Maps an embeddings request (core/embeddings.h) onto the engine: strings are
  // tokenized (with the model's BOS convention), token ids checked against the
  // vocabulary. kInvalidRequest for an input longer than the context
  // (context_length_exceeded), token ids outside the vocabulary, and `dimensions` other
  // than the model's n_embd (a decoder's vectors cannot be shortened).
  Result<PreparedEmbeddings> prepare_embeddings(const EmbeddingsInput& in) const;

  Engine& engine() { return *engine_; }
  EngineStats stats() const { return engine_->stats(); }
  // The engine's effective settings (threads resolved, KV block size, batch limits).
  const EngineConfig& engine_config() const { return engine_->config(); }

 private:
  EngineService() = default;

  ServiceConfig cfg_;
  std::string model_name_;
  int32_t context_length_ = 0;
  std::shared_ptr<const Model> model_;
  std::shared_ptr<const Model> draft_;
  std::shared_ptr<const TokenizerText> text_;
  std::shared_ptr<const VocabTrie> vocab_;  // for constrained decoding
  mutable GrammarCache grammars_;            // used by this service's engine thread only
  ChatTemplate template_{ChatTemplateKind::kLlama2};
  std::unique_ptr<Engine> engine_;
};

}  // namespace frugal::engine
