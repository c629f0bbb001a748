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

#include "backends/engine/engine.h"
#include "backends/engine/format/chat_template.h"
#include "backends/engine/format/tokenizer.h"
#include "backends/engine/model.h"
#include "backends/engine/token_text.h"
#include "core/chat.h"
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
  int32_t default_max_tokens = 4096;  // a request without max_tokens; 0 = the rest of the context
};

// A chat request ready for the engine.
struct PreparedChat {
  GenerateRequest gen;
  bool stream = false;
  bool logprobs = false;  // render OpenAI `logprobs` (with gen.top_logprobs alternatives)
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
  bool speculative() const { return draft_ != nullptr; }

  // Maps an OpenAI chat request onto the engine. kInvalidRequest (HTTP 400, `param`
  // naming the field, code "unsupported_parameter" for features the engine lacks) for
  // tools, tool messages, images, n > 1, JSON response formats, logit_bias, and prompts
  // that do not fit the context. Reads `req.root` for the non-OpenAI sampling
  // extensions top_k, min_p and repetition_penalty (as vLLM accepts them).
  Result<PreparedChat> prepare(const ChatRequest& req) const;

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
  ChatTemplate template_{ChatTemplateKind::kLlama2};
  std::unique_ptr<Engine> engine_;
};

}  // namespace frugal::engine
