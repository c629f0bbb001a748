// CPU forward pass for llama/qwen2 decoders: RMSNorm -> QKV (+bias) -> RoPE -> paged
// attention with GQA -> output projection -> RMSNorm -> SwiGLU FFN, per layer, on a
// batch of tokens from any number of sequences. Matmuls are row-parallel over the weight
// (each weight row is read once per batch, while it sits in L1, for all batch vectors).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backends/engine/forward.h"
#include "backends/engine/kernels.h"
#include "backends/engine/thread_pool.h"

namespace frugal::engine {

namespace {

using cpu::ActBlock;
using cpu::KernelSet;

struct MatJob {
  const Weight* w;
  float* y;               // (B, w->n_out)
  const float* bias;      // (w->n_out,) or nullptr
};

class CpuForward final : public ForwardPass {
 public:
  CpuForward(std::shared_ptr<const Model> model, ThreadPool* pool, const KernelSet* k)
      : model_(std::move(model)), pool_(pool), k_(k) {
    const ModelConfig& c = model_->config();
    inv_freq_.resize(c.head_dim / 2);
    for (int i = 0; i < c.head_dim / 2; ++i)
      inv_freq_[i] = std::pow(c.rope_base, -2.0f * static_cast<float>(i) / static_cast<float>(c.head_dim));
  }

  const Model& model() const override { return *model_; }

  Result<void> forward(std::span<const BatchEntry> batch, KvCache& kv, std::vector<float>& logits) override;
  Result<void> hidden(std::span<const BatchEntry> batch, KvCache& kv, std::vector<float>& hidden) override;

 private:
  // Checks the batch and runs every layer: x_ holds (B, n_embd) residual states after.
  Result<void> layers(std::span<const BatchEntry> batch, KvCache& kv);
  void resize(int64_t B, int32_t max_pos);
  // X (B, n_in) @ W_j^T -> Y_j (B, n_out_j) for every job, sharing one quantisation of X.
  void matmul(const float* x, int64_t B, int64_t n_in, std::initializer_list<MatJob> jobs);
  void rms_norm(const float* x, const std::vector<float>& w, float* y, int64_t B) const;
  void rope(float* v, int n_heads, int32_t pos) const;
  void attention(std::span<const BatchEntry> batch, const KvCache& kv, int layer);

  std::shared_ptr<const Model> model_;
  ThreadPool* pool_;
  const KernelSet* k_;
  std::vector<float> inv_freq_;
  // Scratch, (B, dim) row-major.
  std::vector<float> x_, xn_, q_, kk_, vv_, att_, g_, u_, out_x_;
  std::vector<ActBlock> act_;
  std::vector<float> scores_;  // (threads, max_pos + 1)
  int64_t scores_stride_ = 0;
};

void CpuForward::resize(int64_t B, int32_t max_pos) {
  const ModelConfig& c = model_->config();
  auto sz = [&](std::vector<float>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(n);
  };
  sz(x_, B * c.n_embd);
  sz(xn_, B * c.n_embd);
  sz(q_, B * c.q_dim());
  sz(kk_, B * c.kv_dim());
  sz(vv_, B * c.kv_dim());
  sz(att_, B * c.q_dim());
  sz(g_, B * c.n_ff);
  sz(u_, B * c.n_ff);
  const int64_t max_in = std::max<int64_t>({c.n_embd, c.q_dim(), c.n_ff});
  if (static_cast<int64_t>(act_.size()) < B * max_in / cpu::kActBlock) act_.resize(B * max_in / cpu::kActBlock);
  if (scores_stride_ < max_pos + 1) {
    scores_stride_ = max_pos + 1 + 256;
    scores_.assign(static_cast<size_t>(pool_->size()) * scores_stride_, 0.0f);
  }
}

void CpuForward::matmul(const float* x, int64_t B, int64_t n_in, std::initializer_list<MatJob> jobs) {
  bool any_q = false;
  int64_t rows = 0;
  for (const MatJob& j : jobs) {
    any_q |= cpu::wtype_uses_act_blocks(j.w->type);
    rows += j.w->n_out;
  }
  const int64_t nb = n_in / cpu::kActBlock;
  if (any_q) {
    // x (B, n_in) -> act (B, n_in/32)
    pool_->parallel_for(B, 16, [&](int64_t b0, int64_t b1, int) {
      for (int64_t b = b0; b < b1; ++b) k_->quantize_act(x + b * n_in, act_.data() + b * nb, n_in);
    });
  }
  const MatJob* js = jobs.begin();
  const int64_t n_jobs = static_cast<int64_t>(jobs.size());
  // Enough chunks for dynamic balance on a busy machine, few enough to keep overhead low.
  const int64_t grain = std::max<int64_t>(4, rows / (pool_->size() * 16));
  pool_->parallel_for(rows, grain, [&](int64_t r0, int64_t r1, int) {
    int64_t j = 0, base = 0;
    while (r0 >= base + js[j].w->n_out) base += js[j++].w->n_out;
    for (int64_t r = r0; r < r1;) {
      const MatJob& job = js[j];
      const Weight& w = *job.w;
      const int64_t end = std::min(r1, base + w.n_out);
      const cpu::DotFn dot = k_->dot[w.type];
      const bool q = cpu::wtype_uses_act_blocks(w.type);
      // W (n_out, n_in) rows [r-base, end-base) @ X (B, n_in) -> Y (B, n_out)
      for (int64_t rr = r - base; rr < end - base; ++rr) {
        const uint8_t* row = w.row(rr);
        const float bias = job.bias != nullptr ? job.bias[rr] : 0.0f;
        for (int64_t b = 0; b < B; ++b) {
          const void* a = q ? static_cast<const void*>(act_.data() + b * nb)
                            : static_cast<const void*>(x + b * n_in);
          job.y[b * w.n_out + rr] = dot(row, a, n_in) + bias;
        }
      }
      r = end;
      if (r < r1) {
        base += w.n_out;
        ++j;
      }
      (void)n_jobs;
    }
  });
}

void CpuForward::rms_norm(const float* x, const std::vector<float>& w, float* y, int64_t B) const {
  const ModelConfig& c = model_->config();
  const int64_t n = c.n_embd;
  for (int64_t b = 0; b < B; ++b) {
    const float* xb = x + b * n;
    float* yb = y + b * n;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xb[i]) * xb[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + c.rms_eps));
    for (int64_t i = 0; i < n; ++i) yb[i] = xb[i] * scale * w[i];
  }
}

// v (n_heads, head_dim) rotated in place for position pos.
void CpuForward::rope(float* v, int n_heads, int32_t pos) const {
  const ModelConfig& c = model_->config();
  const int hd = c.head_dim, half = hd / 2;
  float cs[512], sn[512];  // head_dim <= 1024
  for (int i = 0; i < half; ++i) {
    const float theta = static_cast<float>(pos) * inv_freq_[i];
    cs[i] = std::cos(theta);
    sn[i] = std::sin(theta);
  }
  for (int h = 0; h < n_heads; ++h) {
    float* x = v + h * hd;
    if (c.rope == RopePairing::kNormal) {
      for (int i = 0; i < half; ++i) {
        const float a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = a * cs[i] - b * sn[i];
        x[2 * i + 1] = a * sn[i] + b * cs[i];
      }
    } else {
      for (int i = 0; i < half; ++i) {
        const float a = x[i], b = x[i + half];
        x[i] = a * cs[i] - b * sn[i];
        x[i + half] = a * sn[i] + b * cs[i];
      }
    }
  }
}

// For each entry b and head h: softmax(q·K[0..pos] / sqrt(hd)) @ V[0..pos] -> att (B, q_dim)
void CpuForward::attention(std::span<const BatchEntry> batch, const KvCache& kv, int layer) {
  const ModelConfig& c = model_->config();
  const int hd = c.head_dim, group = c.n_head / c.n_head_kv, kvd = c.kv_dim(), bs = kv.block_size();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t tasks = static_cast<int64_t>(batch.size()) * c.n_head;
  pool_->parallel_for(tasks, 1, [&](int64_t t0, int64_t t1, int thread) {
    float* sc = scores_.data() + static_cast<size_t>(thread) * scores_stride_;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / c.n_head;
      const int h = static_cast<int>(t % c.n_head), kvh = h / group;
      const BatchEntry& e = batch[b];
      const auto& table = kv.block_table(e.seq);
      const float* q = q_.data() + b * c.q_dim() + h * hd;
      float mx = -INFINITY;
      for (int32_t p = 0; p <= e.pos; ++p) {
        const float* kp = kv.k(table[p / bs], layer) + (p % bs) * kvd + kvh * hd;
        sc[p] = k_->dot_f32(q, kp, hd) * scale;
        mx = std::max(mx, sc[p]);
      }
      float sum = 0.0f;
      for (int32_t p = 0; p <= e.pos; ++p) sum += sc[p] = std::exp(sc[p] - mx);
      const float inv = 1.0f / sum;
      float* out = att_.data() + b * c.q_dim() + h * hd;
      std::fill(out, out + hd, 0.0f);
      for (int32_t p = 0; p <= e.pos; ++p) {
        const float* vp = kv.v(table[p / bs], layer) + (p % bs) * kvd + kvh * hd;
        k_->axpy_f32(sc[p] * inv, vp, out, hd);
      }
    }
  });
}

Result<void> CpuForward::layers(std::span<const BatchEntry> batch, KvCache& kv) {
  const ModelConfig& c = model_->config();
  const int64_t B = static_cast<int64_t>(batch.size());
  int32_t max_pos = 0;
  for (const BatchEntry& e : batch) {
    if (e.token < 0 || e.token >= c.n_vocab)
      return make_error(ErrorKind::kInvalidRequest, "token id " + std::to_string(e.token) + " is outside the vocabulary");
    if (e.pos < 0 || kv.blocks_for(e.pos + 1) > static_cast<int32_t>(kv.block_table(e.seq).size()))
      return make_error(ErrorKind::kInternal, "forward: no KV block reserved for position " + std::to_string(e.pos));
    max_pos = std::max(max_pos, e.pos);
  }
  resize(B, max_pos);
  const int64_t E = c.n_embd, kvd = c.kv_dim(), bs = kv.block_size();
  float* x = x_.data();
  const Weight& emb = model_->token_embd();
  for (int64_t b = 0; b < B; ++b) k_->dequant[emb.type](emb.row(batch[b].token), x + b * E, E);

  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = model_->layer(l);
    rms_norm(x, L.attn_norm, xn_.data(), B);
    const bool bias = c.qkv_bias;
    matmul(xn_.data(), B, E,
           {{&L.wq, q_.data(), bias ? L.bq.data() : nullptr},
            {&L.wk, kk_.data(), bias ? L.bk.data() : nullptr},
            {&L.wv, vv_.data(), bias ? L.bv.data() : nullptr}});
    for (int64_t b = 0; b < B; ++b) {
      rope(q_.data() + b * c.q_dim(), c.n_head, batch[b].pos);
      rope(kk_.data() + b * kvd, c.n_head_kv, batch[b].pos);
      const auto& table = kv.block_table(batch[b].seq);
      const int32_t p = batch[b].pos;
      std::memcpy(kv.k(table[p / bs], l) + (p % bs) * kvd, kk_.data() + b * kvd, kvd * sizeof(float));
      std::memcpy(kv.v(table[p / bs], l) + (p % bs) * kvd, vv_.data() + b * kvd, kvd * sizeof(float));
    }
    attention(batch, kv, l);
    matmul(att_.data(), B, c.q_dim(), {{&L.wo, xn_.data(), nullptr}});
    for (int64_t i = 0; i < B * E; ++i) x[i] += xn_[i];
    rms_norm(x, L.ffn_norm, xn_.data(), B);
    matmul(xn_.data(), B, E, {{&L.w_gate, g_.data(), nullptr}, {&L.w_up, u_.data(), nullptr}});
    const int64_t F = c.n_ff;
    for (int64_t i = 0; i < B * F; ++i) g_[i] = g_[i] / (1.0f + std::exp(-g_[i])) * u_[i];
    matmul(g_.data(), B, F, {{&L.w_down, xn_.data(), nullptr}});
    for (int64_t i = 0; i < B * E; ++i) x[i] += xn_[i];
  }
  return {};
}

Result<void> CpuForward::hidden(std::span<const BatchEntry> batch, KvCache& kv, std::vector<float>& hidden) {
  const int64_t B = static_cast<int64_t>(batch.size()), E = model_->config().n_embd;
  hidden.clear();
  if (B == 0) return {};
  FRUGAL_TRY(layers(batch, kv));
  hidden.resize(static_cast<size_t>(B * E));
  rms_norm(x_.data(), model_->output_norm(), hidden.data(), B);
  return {};
}

Result<void> CpuForward::forward(std::span<const BatchEntry> batch, KvCache& kv, std::vector<float>& logits) {
  const ModelConfig& c = model_->config();
  const int64_t B = static_cast<int64_t>(batch.size());
  logits.clear();
  if (B == 0) return {};
  FRUGAL_TRY(layers(batch, kv));
  int64_t n_out = 0;
  for (const BatchEntry& e : batch) n_out += e.logits ? 1 : 0;
  const int64_t E = c.n_embd;
  const float* x = x_.data();
  // Only the wanted rows go through the head: (n_out, n_embd) @ output^T -> (n_out, n_vocab)
  if (out_x_.size() < static_cast<size_t>(n_out * E)) out_x_.resize(n_out * E);
  int64_t o = 0;
  for (int64_t b = 0; b < B; ++b)
    if (batch[b].logits) std::memcpy(out_x_.data() + (o++) * E, x + b * E, E * sizeof(float));
  rms_norm(out_x_.data(), model_->output_norm(), out_x_.data(), n_out);
  logits.resize(static_cast<size_t>(n_out) * c.n_vocab);
  matmul(out_x_.data(), n_out, E, {{&model_->output(), logits.data(), nullptr}});
  return {};
}

}  // namespace

std::unique_ptr<ForwardPass> make_cpu_forward(std::shared_ptr<const Model> model, ThreadPool* pool,
                                              const cpu::KernelSet* kernels) {
  return std::make_unique<CpuForward>(std::move(model), pool, kernels != nullptr ? kernels : &cpu::default_kernels());
}

KvCacheShape kv_shape_for(const ModelConfig& c, int32_t block_size) {
  return KvCacheShape{c.n_layer, c.kv_dim(), block_size};
}

}  // namespace frugal::engine
