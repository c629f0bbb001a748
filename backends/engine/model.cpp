#include "backends/engine/model.h"

#include <sstream>

#include "backends/engine/kernels.h"

namespace frugal::engine {

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::kMean: return "mean";
    case Pooling::kCls: return "cls";
    case Pooling::kLast: return "last";
  }
  return "last";
}


namespace {

Error bad_model(const GgufFile& f, const std::string& what) {
  return make_error(ErrorKind::kInvalidRequest, f.path() + ": " + what, {}, "unsupported_model");
}

}  // namespace

struct ModelLoader {
  const GgufFile& f;
  const ModelConfig& c;

  Result<Weight> matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
    const TensorInfo* t = f.tensor(name);
    if (t == nullptr) return bad_model(f, "missing tensor " + name);
    const auto type = static_cast<uint32_t>(t->type);
    if (!cpu::wtype_supported(type))
      return bad_model(f, "tensor " + name + " has type " + type_name(t->type) +
                              ", which the engine does not support (supported: F32, F16, BF16, "
                              "Q4_0, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K)");
    if (t->n_dims != 2 || t->ne[0] != n_in || t->ne[1] != n_out)
      return bad_model(f, "tensor " + name + " has shape " + t->shape_string() + ", expected [" +
                              std::to_string(n_in) + ", " + std::to_string(n_out) + "]");
    if (cpu::wtype_uses_act_blocks(type) && n_in % cpu::kActBlock != 0)
      return bad_model(f, "tensor " + name + ": row length " + std::to_string(n_in) +
                              " is not a multiple of 32");
    Weight w;
    w.type = type;
    w.n_in = n_in;
    w.n_out = n_out;
    w.row_bytes = cpu::wtype_row_bytes(type, n_in);
    w.data = static_cast<const uint8_t*>(t->data);
    if (t->n_bytes < w.row_bytes * n_out) return bad_model(f, "tensor " + name + " is truncated");
    return w;
  }

  Result<std::vector<float>> vec(const std::string& name, int64_t n) const {
    const TensorInfo* t = f.tensor(name);
    if (t == nullptr) return bad_model(f, "missing tensor " + name);
    if (t->n_elements() != n)
      return bad_model(f, "tensor " + name + " has " + std::to_string(t->n_elements()) +
                              " elements, expected " + std::to_string(n));
    std::vector<float> out(n);
    auto r = dequantize_row(t->type, t->data, out.data(), n);
    if (!r.ok()) return bad_model(f, "tensor " + name + ": " + r.error().message);
    return out;
  }
};

Result<std::shared_ptr<const Model>> Model::load(const std::string& path) {
  auto file = GgufFile::open(path);
  if (!file.ok()) return std::move(file).error();
  return from_gguf(std::move(file).value());
}

Result<std::shared_ptr<const Model>> Model::from_gguf(GgufFile file) {
  std::shared_ptr<Model> m(new Model());
  m->file_.emplace(std::move(file));
  const GgufFile& f = *m->file_;
  ModelConfig& c = m->config_;
  c.arch_name = f.architecture();
  if (c.arch_name == "llama") {
    c.arch = Arch::kLlama;
    c.rope = RopePairing::kNormal;
  } else if (c.arch_name == "qwen2") {
    c.arch = Arch::kQwen2;
    c.rope = RopePairing::kNeox;
  } else {
    return bad_model(f, "architecture '" + c.arch_name +
                            "' is not supported by the engine (supported: llama, qwen2)");
  }
  const std::string a = c.arch_name + ".";
#define FRUGAL_GET(dst, expr)                  \
  do {                                         \
    auto r_ = (expr);                          \
    if (!r_.ok()) return std::move(r_).error(); \
    dst = *r_;                                 \
  } while (0)
  FRUGAL_GET(c.n_embd, f.get_u32(a + "embedding_length"));
  FRUGAL_GET(c.n_layer, f.get_u32(a + "block_count"));
  FRUGAL_GET(c.n_ff, f.get_u32(a + "feed_forward_length"));
  FRUGAL_GET(c.n_head, f.get_u32(a + "attention.head_count"));
  FRUGAL_GET(c.n_head_kv, f.get_u32_or(a + "attention.head_count_kv", c.n_head));
  FRUGAL_GET(c.n_ctx_train, f.get_u32_or(a + "context_length", 2048));
  FRUGAL_GET(c.rms_eps, f.get_f32_or(a + "attention.layer_norm_rms_epsilon", 1e-5f));
  FRUGAL_GET(c.rope_base, f.get_f32_or(a + "rope.freq_base", 10000.0f));
  {
    const auto pt = f.get_u32_or(a + "pooling_type", 0);  // only embeddings read it: never fatal
    const uint32_t pooling = pt.ok() ? *pt : 0;
    c.pooling = pooling == 1 ? Pooling::kMean : pooling == 2 ? Pooling::kCls : Pooling::kLast;
  }
  if (c.n_head <= 0 || c.n_head_kv <= 0 || c.n_embd % c.n_head != 0 || c.n_head % c.n_head_kv != 0)
    return bad_model(f, "inconsistent head counts");
  c.head_dim = c.n_embd / c.n_head;
  uint32_t key_len = 0;
  FRUGAL_GET(key_len, f.get_u32_or(a + "attention.key_length", c.head_dim));
  if (static_cast<int32_t>(key_len) != c.head_dim)
    return bad_model(f, "attention.key_length != n_embd / n_head is not supported");
  FRUGAL_GET(c.rope_dim, f.get_u32_or(a + "rope.dimension_count", c.head_dim));
  if (c.rope_dim != c.head_dim) return bad_model(f, "partial rotary embeddings are not supported");
  if (c.head_dim % 2 != 0) return bad_model(f, "odd head dimension");
  if (f.has(a + "rope.scaling.type") || f.tensor("rope_freqs.weight") != nullptr)
    return bad_model(f, "RoPE scaling (rope.scaling.* / rope_freqs) is not supported yet");
#undef FRUGAL_GET

  const TensorInfo* embd = f.tensor("token_embd.weight");
  if (embd == nullptr) return bad_model(f, "missing tensor token_embd.weight");
  c.n_vocab = static_cast<int32_t>(embd->ne[1]);
  c.tied_embeddings = f.tensor("output.weight") == nullptr;
  c.qkv_bias = f.tensor("blk.0.attn_q.bias") != nullptr;

  ModelLoader L{f, c};
  auto take = [](auto r, auto& dst) -> Result<void> {
    if (!r.ok()) return std::move(r).error();
    dst = std::move(r).value();
    return {};
  };
  FRUGAL_TRY(take(L.matrix("token_embd.weight", c.n_embd, c.n_vocab), m->token_embd_));
  if (c.tied_embeddings) {
    m->output_ = m->token_embd_;
  } else {
    FRUGAL_TRY(take(L.matrix("output.weight", c.n_embd, c.n_vocab), m->output_));
  }
  FRUGAL_TRY(take(L.vec("output_norm.weight", c.n_embd), m->output_norm_));
  m->layers_.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights& l = m->layers_[i];
    FRUGAL_TRY(take(L.vec(p + "attn_norm.weight", c.n_embd), l.attn_norm));
    FRUGAL_TRY(take(L.matrix(p + "attn_q.weight", c.n_embd, c.q_dim()), l.wq));
    FRUGAL_TRY(take(L.matrix(p + "attn_k.weight", c.n_embd, c.kv_dim()), l.wk));
    FRUGAL_TRY(take(L.matrix(p + "attn_v.weight", c.n_embd, c.kv_dim()), l.wv));
    FRUGAL_TRY(take(L.matrix(p + "attn_output.weight", c.q_dim(), c.n_embd), l.wo));
    if (c.qkv_bias) {
      FRUGAL_TRY(take(L.vec(p + "attn_q.bias", c.q_dim()), l.bq));
      FRUGAL_TRY(take(L.vec(p + "attn_k.bias", c.kv_dim()), l.bk));
      FRUGAL_TRY(take(L.vec(p + "attn_v.bias", c.kv_dim()), l.bv));
    }
    FRUGAL_TRY(take(L.vec(p + "ffn_norm.weight", c.n_embd), l.ffn_norm));
    FRUGAL_TRY(take(L.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff), l.w_gate));
    FRUGAL_TRY(take(L.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff), l.w_up));
    FRUGAL_TRY(take(L.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd), l.w_down));
  }
  return std::shared_ptr<const Model>(std::move(m));
}

size_t Model::weight_bytes_per_token() const {
  size_t n = output_.row_bytes * output_.n_out + token_embd_.row_bytes;
  for (const auto& l : layers_)
    for (const Weight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      n += w->row_bytes * w->n_out;
  return n;
}

std::string Model::describe() const {
  std::ostringstream o;
  const ModelConfig& c = config_;
  o << c.arch_name << " layers=" << c.n_layer << " n_embd=" << c.n_embd << " heads=" << c.n_head
    << "/" << c.n_head_kv << " n_ff=" << c.n_ff << " vocab=" << c.n_vocab
    << " type=" << type_name(static_cast<GgmlType>(layers_.empty() ? 0 : layers_[0].wq.type))
    << (c.tied_embeddings ? " tied" : "") << (c.qkv_bias ? " qkv_bias" : "");
  return o.str();
}

}  // namespace frugal::engine
