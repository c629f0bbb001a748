#include "backends/engine/service.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

namespace frugal::engine {
namespace {

constexpr int32_t kDefaultContext = 4096;  // when the GGUF does not say
constexpr int kMaxTopLogprobs = 20;        // OpenAI's limit

Error unsupported(std::string param, const std::string& what) {
  return make_error(ErrorKind::kInvalidRequest, "The local engine does not support " + what + ".",
                    std::move(param), "unsupported_parameter");
}

Error invalid(std::string param, std::string message) {
  return make_error(ErrorKind::kInvalidRequest, std::move(message), std::move(param));
}

// Reads an optional number from the raw request (extension fields the core parser does
// not model). Absent or null: nullopt.
Result<std::optional<double>> extension_number(const ChatRequest& req, const char* key) {
  simdjson::dom::element v;
  if (req.root[key].get(v) || v.is_null()) return std::optional<double>();
  double d = 0;
  if (v.is_double()) d = v.get_double().value_unsafe();
  else if (v.is_int64()) d = static_cast<double>(v.get_int64().value_unsafe());
  else if (v.is_uint64()) d = static_cast<double>(v.get_uint64().value_unsafe());
  else return invalid(key, std::string("Invalid type for '") + key + "': expected a number.");
  return std::optional<double>(d);
}

}  // namespace

std::string EngineService::model_name_for(std::string_view path) {
  const size_t slash = path.find_last_of('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  constexpr std::string_view kExt = ".gguf";
  if (name.size() > kExt.size() && name.substr(name.size() - kExt.size()) == kExt)
    name.remove_suffix(kExt.size());
  return std::string(name);
}

Result<std::shared_ptr<EngineService>> EngineService::load(const ServiceConfig& cfg) {
  std::shared_ptr<EngineService> s(new EngineService());
  s->cfg_ = cfg;
  s->model_name_ = model_name_for(cfg.model_path);
  auto model = Model::load(cfg.model_path);
  if (!model) return std::move(model).error();
  s->model_ = std::move(model).value();
  auto tok = Tokenizer::from_gguf(s->model_->gguf());
  if (!tok) return make_error(tok.error().kind, cfg.model_path + ": " + tok.error().message);
  s->text_ = std::make_shared<const TokenizerText>(std::move(tok).value());
  s->template_ = ChatTemplate::from_gguf(s->model_->gguf());
  s->vocab_ = VocabTrie::build(*s->text_, s->model_->config().n_vocab);
  const ModelConfig& mc = s->model_->config();
  s->context_length_ = cfg.context_length > 0 ? cfg.context_length
                       : mc.n_ctx_train > 0    ? mc.n_ctx_train
                                               : kDefaultContext;
  if (s->tokenizer().n_vocab() != mc.n_vocab)
    return make_error(ErrorKind::kInvalidRequest,
                      cfg.model_path + ": the tokenizer has " + std::to_string(s->tokenizer().n_vocab()) +
                          " tokens but the model's output has " + std::to_string(mc.n_vocab));

  EngineConfig ec;
  ec.n_threads = cfg.threads;
  ec.kv_cache_bytes = cfg.kv_memory_bytes;
  ec.max_running = std::max(1, cfg.max_batch);
  ec.prefill_chunk = std::max(1, cfg.prefill_chunk);
  ec.attention_cost_weight = std::max(0.0, cfg.attention_cost_weight);
  // A step holds every running sequence's token and at least one whole prompt chunk.
  ec.max_batch_tokens = std::max(ec.max_batch_tokens, ec.max_running + ec.prefill_chunk);
  if (!cfg.draft_model_path.empty()) {
    auto draft = Model::load(cfg.draft_model_path);
    if (!draft) return std::move(draft).error();
    s->draft_ = std::move(draft).value();
    if (s->draft_->config().n_vocab != mc.n_vocab)
      return make_error(ErrorKind::kInvalidRequest,
                        cfg.draft_model_path + ": the draft model's vocabulary (" +
                            std::to_string(s->draft_->config().n_vocab) + " tokens) differs from the target's (" +
                            std::to_string(mc.n_vocab) + "); speculative decoding needs the same tokenizer");
    ec.draft = s->draft_;
    ec.draft_tokens = std::max(1, cfg.draft_tokens);
  }
  auto engine = Engine::create(s->model_, ec, s->text_);
  if (!engine) return make_error(engine.error().kind, cfg.model_path + ": " + engine.error().message);
  s->engine_ = std::move(engine).value();
  return s;
}

EngineService::~EngineService() = default;

Result<PreparedChat> EngineService::prepare(const ChatRequest& req) const {
  // What the engine cannot do is a clear 400, never a silent drop.
  const auto& sp = req.sampling;
  if (sp.n && *sp.n != 1) return unsupported("n", "n != 1 (it returns one choice per request)");
  simdjson::dom::element bias;
  if (!req.root["logit_bias"].get(bias) && !bias.is_null()) {
    simdjson::dom::object o;
    if (bias.get_object().get(o) || o.size() != 0) return unsupported("logit_bias", "logit_bias");
  }
  auto constraint = output_constraint(req, vocab_, &grammars_);
  if (!constraint) return std::move(constraint).error();
  if (constraint->grammar && !sp.stop.empty())
    return unsupported("stop", "stop sequences together with JSON output or tool calls (a stop string would cut "
                               "the JSON; the grammar ends the output)");
  auto messages = chat_messages(req, constraint->tools_prompt);
  if (!messages) return std::move(messages).error();
  auto prompt = template_.apply(*messages, /*add_generation_prompt=*/true);
  if (!prompt) {
    Error e = std::move(prompt).error();
    if (e.param.empty()) e.param = "messages";
    return e;
  }

  PreparedChat out;
  out.stream = req.stream;
  out.tools = constraint->tools;
  GenerateRequest& g = out.gen;
  g.grammar = std::move(constraint->grammar);
  g.prompt = tokenizer().encode(*prompt, /*add_bos=*/false, /*parse_special=*/true);
  const int64_t n_prompt = static_cast<int64_t>(g.prompt.size());
  if (n_prompt >= context_length_)
    return make_error(ErrorKind::kInvalidRequest,
                      "This model's maximum context length is " + std::to_string(context_length_) +
                          " tokens. However, your messages resulted in " + std::to_string(n_prompt) + " tokens.",
                      "messages", "context_length_exceeded");
  const int64_t room = context_length_ - n_prompt;
  if (sp.max_tokens && *sp.max_tokens > room)
    return make_error(ErrorKind::kInvalidRequest,
                      "This model's maximum context length is " + std::to_string(context_length_) +
                          " tokens. However, you requested " + std::to_string(n_prompt + *sp.max_tokens) +
                          " tokens (" + std::to_string(n_prompt) + " in the messages, " +
                          std::to_string(*sp.max_tokens) + " in the completion).",
                      "max_tokens", "context_length_exceeded");
  // Without max_tokens: the configured default, never past the context.
  const int64_t dflt = cfg_.default_max_tokens > 0 ? std::min<int64_t>(cfg_.default_max_tokens, room) : room;
  g.max_tokens = static_cast<int32_t>(sp.max_tokens.value_or(dflt));

  engine::SamplingParams& s = g.sampling;
  s.temperature = static_cast<float>(sp.temperature.value_or(1.0));
  if (sp.top_p) {
    if (!(*sp.top_p > 0 && *sp.top_p <= 1)) return invalid("top_p", "Invalid 'top_p': must be in (0, 1].");
    s.top_p = static_cast<float>(*sp.top_p);
  }
  for (auto [name, value, dst] : {std::tuple{"presence_penalty", sp.presence_penalty, &s.presence_penalty},
                                  std::tuple{"frequency_penalty", sp.frequency_penalty, &s.frequency_penalty}}) {
    if (!value) continue;
    if (*value < -2 || *value > 2)
      return invalid(name, std::string("Invalid '") + name + "': must be between -2 and 2.");
    *dst = static_cast<float>(*value);
  }
  auto top_k = extension_number(req, "top_k");
  if (!top_k) return std::move(top_k).error();
  if (*top_k) {
    if (**top_k != std::floor(**top_k)) return invalid("top_k", "Invalid 'top_k': must be an integer.");
    s.top_k = static_cast<int32_t>(std::clamp(**top_k, -1.0, 1e9));
  }
  auto min_p = extension_number(req, "min_p");
  if (!min_p) return std::move(min_p).error();
  if (*min_p) {
    if (**min_p < 0 || **min_p > 1) return invalid("min_p", "Invalid 'min_p': must be between 0 and 1.");
    s.min_p = static_cast<float>(**min_p);
  }
  auto rep = extension_number(req, "repetition_penalty");
  if (!rep) return std::move(rep).error();
  if (*rep) {
    if (**rep <= 0) return invalid("repetition_penalty", "Invalid 'repetition_penalty': must be positive.");
    s.repetition_penalty = static_cast<float>(**rep);
  }
  if (sp.seed) g.seed = static_cast<uint64_t>(*sp.seed);
  g.stop = sp.stop;
  if (sp.top_logprobs) {
    if (*sp.top_logprobs < 0 || *sp.top_logprobs > kMaxTopLogprobs)
      return invalid("top_logprobs", "Invalid 'top_logprobs': must be between 0 and 20.");
    if (!sp.logprobs)
      return invalid("top_logprobs", "Invalid 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.");
  }
  out.logprobs = sp.logprobs;
  g.logprobs = sp.logprobs;
  g.top_logprobs = static_cast<int32_t>(sp.top_logprobs.value_or(0));
  return out;
}

Result<PreparedEmbeddings> EngineService::prepare_embeddings(const EmbeddingsInput& in) const {
  const ModelConfig& mc = model_->config();
  if (in.dimensions && *in.dimensions != mc.n_embd)
    return unsupported("dimensions", "'dimensions' other than the model's " + std::to_string(mc.n_embd) +
                                         " (its vectors cannot be shortened)");
  PreparedEmbeddings out;
  out.base64 = in.base64;
  out.req.inputs.reserve(in.count());
  auto too_long = [&](size_t i, size_t n) {
    return make_error(ErrorKind::kInvalidRequest,
                      "This model's maximum context length is " + std::to_string(context_length_) +
                          " tokens, however you requested " + std::to_string(n) + " tokens in input[" +
                          std::to_string(i) + "]. Please reduce your input.",
                      "input", "context_length_exceeded");
  };
  for (size_t i = 0; i < in.texts.size(); ++i) {
    std::vector<int32_t> ids = tokenizer().encode(in.texts[i], tokenizer().add_bos_default(), /*parse_special=*/false);
    if (ids.empty()) return invalid("input", "'$.input' is invalid: input[" + std::to_string(i) + "] has no tokens.");
    if (static_cast<int64_t>(ids.size()) > context_length_) return too_long(i, ids.size());
    out.prompt_tokens += static_cast<int64_t>(ids.size());
    out.req.inputs.push_back(std::move(ids));
  }
  for (size_t i = 0; i < in.token_ids.size(); ++i) {
    const std::vector<int64_t>& t = in.token_ids[i];
    if (static_cast<int64_t>(t.size()) > context_length_) return too_long(i, t.size());
    std::vector<int32_t> ids;
    ids.reserve(t.size());
    for (int64_t id : t) {
      if (id < 0 || id >= mc.n_vocab)
        return invalid("input", "'$.input' is invalid: token id " + std::to_string(id) + " in input[" +
                                    std::to_string(i) + "] is outside the vocabulary (" +
                                    std::to_string(mc.n_vocab) + " tokens).");
      ids.push_back(static_cast<int32_t>(id));
    }
    out.prompt_tokens += static_cast<int64_t>(ids.size());
    out.req.inputs.push_back(std::move(ids));
  }
  return out;
}

}  // namespace frugal::engine
