// CPU forward pass for llama/qwen2 decoders: RMSNorm -> QKV (+bias) -> RoPE -> paged
// attention with GQA -> output projection -> RMSNorm -> SwiGLU FFN, per layer, on a
// batch of tokens from any number of sequences. Matmuls are row-parallel over the weight;
// the quantized types run the kernel set's batched matmul (each weight block decoded once
// per tile of tokens, activations quantized to 8 bits once per matmul input).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "backends/engine/forward.h"
#include "backends/engine/kernels.h"
#include "backends/engine/thread_pool.h"

namespace frugal::engine {

namespace {

using cpu::ActBlock;
using cpu::KernelSet;

// Weights repacked for the kernel set's packed matmul (cpu::pack_rows), keyed by the
// Model's Weight. Shared by every forward pass over the same model and kernel set (a
// self-draft, several engines), built once, freed with the last of them.
struct PackedWeights {
  std::unordered_map<const Weight*, std::vector<uint8_t>> rows;  // packed_row_bytes per row
  const uint8_t* find(const Weight* w) const {
    auto it = rows.find(w);
    return it == rows.end() ? nullptr : it->second.data();
  }
};

std::shared_ptr<const PackedWeights> packed_weights(const std::shared_ptr<const Model>& model, const KernelSet* k,
                                                    ThreadPool* pool) {
  static std::mutex mu;
  static std::map<std::pair<const Model*, const KernelSet*>, std::pair<std::weak_ptr<const Model>, std::weak_ptr<const PackedWeights>>> cache;
  std::lock_guard lock(mu);
  const auto key = std::pair{model.get(), k};
  if (auto it = cache.find(key); it != cache.end()) {
    if (auto m = it->second.first.lock(); m == model)
      if (auto p = it->second.second.lock()) return p;
  }
  std::erase_if(cache, [](const auto& e) { return e.second.first.expired() || e.second.second.expired(); });
  auto packed = std::make_shared<PackedWeights>();
  std::vector<const Weight*> ws;
  for (int l = 0; l < model->config().n_layer; ++l) {
    const LayerWeights& L = model->layer(l);
    for (const Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) ws.push_back(w);
  }
  ws.push_back(&model->output());
  for (const Weight* w : ws) {
    if (k->gemm_packed[w->type] == nullptr || w->n_out % cpu::kPackRows != 0 || packed->rows.count(w)) continue;
    std::vector<uint8_t>& out = packed->rows[w];
    const size_t prb = cpu::packed_row_bytes(w->type, w->n_in);
    out.resize(prb * static_cast<size_t>(w->n_out));
    const int64_t groups = w->n_out / cpu::kPackRows;
    pool->parallel_for(groups, 64, [&](int64_t g0, int64_t g1, int) {
      cpu::pack_rows(w->type, w->row(g0 * cpu::kPackRows), w->row_bytes, (g1 - g0) * cpu::kPackRows, w->n_in,
                     out.data() + static_cast<size_t>(g0 * cpu::kPackRows) * prb);
    });
  }
  cache[key] = {model, packed};
  return packed;
}

struct MatJob {
  const Weight* w;
  float* y;               // (B, w->n_out)
  const float* bias;      // (w->n_out,) or nullptr
};

class CpuForward final : public ForwardPass {
 public:
  CpuForward(std::shared_ptr<const Model> model, ThreadPool* pool, const KernelSet* k)
      : model_(std::move(model)), pool_(pool), k_(k), packed_(packed_weights(model_, k_, pool_)) {
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
  void resize(int64_t B);
  // X (B, n_in) @ W_j^T -> Y_j (B, n_out_j) for every job, sharing one quantisation of X.
  void matmul(const float* x, int64_t B, int64_t n_in, std::initializer_list<MatJob> jobs);
  void rms_norm(const float* x, const std::vector<float>& w, float* y, int64_t B) const;
  void rope(float* v, int n_heads, int32_t pos) const;
  void attention(std::span<const BatchEntry> batch, const KvCache& kv, int layer);

  std::shared_ptr<const Model> model_;
  ThreadPool* pool_;
  const KernelSet* k_;
  std::shared_ptr<const PackedWeights> packed_;
  std::vector<float> inv_freq_;
  // Scratch, (B, dim) row-major.
  std::vector<float> x_, xn_, q_, kk_, vv_, att_, g_, u_, out_x_;
  std::vector<ActBlock> act_;
  std::vector<float> ads_;     // act_[i].d * act_[i].s
  // Attention work: tiles of (entries [b0, b1) of one sequence) x (heads [h0, h1) of one
  // KV head); ptrs indexes that sequence's and KV head's K/V block pointers in kv_ptrs_.
  struct AttnTile {
    int64_t b0, b1;
    int h0, h1;
    size_t ptrs;
  };
  std::vector<AttnTile> attn_tiles_;
  std::vector<const float*> kv_ptrs_;
  std::vector<std::vector<const float*>> attn_k_, attn_v_;  // per pool thread
};

void CpuForward::resize(int64_t B) {
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
  if (static_cast<int64_t>(act_.size()) < B * max_in / cpu::kActBlock) {
    act_.resize(B * max_in / cpu::kActBlock);
    ads_.resize(act_.size());
  }
  attn_k_.resize(static_cast<size_t>(pool_->size()));
  attn_v_.resize(static_cast<size_t>(pool_->size()));
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
    // x (B, n_in) -> act (B, n_in/32), once for every job; ads: d*s per block (K-quant minimums)
    pool_->parallel_for(B, 16, [&](int64_t b0, int64_t b1, int) {
      for (int64_t b = b0; b < b1; ++b) {
        k_->quantize_act(x + b * n_in, act_.data() + b * nb, n_in);
        cpu::act_block_ds(act_.data() + b * nb, nb, ads_.data() + b * nb);
      }
    });
  }
  const MatJob* js = jobs.begin();
  std::array<const uint8_t*, 4> packed{};
  for (size_t j = 0; j < jobs.size() && j < packed.size(); ++j) packed[j] = packed_->find(js[j].w);
  // Enough chunks for dynamic balance on a busy machine, few enough to keep overhead low;
  // a multiple of 8 rows so packed groups and the batched kernels' row tiles stay whole.
  int64_t grain = std::max<int64_t>(cpu::kPackRows, rows / (pool_->size() * 16));
  grain += (cpu::kPackRows - grain % cpu::kPackRows) % cpu::kPackRows;
  pool_->parallel_for(rows, grain, [&](int64_t r0, int64_t r1, int) {
    int64_t j = 0, base = 0;
    while (r0 >= base + js[j].w->n_out) base += js[j++].w->n_out;
    for (int64_t r = r0; r < r1;) {
      const MatJob& job = js[j];
      const Weight& w = *job.w;
      const int64_t lo = r - base, hi = std::min(r1, base + w.n_out) - base;
      // W (n_out, n_in) rows [lo, hi) @ X (B, n_in) -> Y (B, n_out)
      const uint8_t* pk = static_cast<size_t>(j) < packed.size() ? packed[j] : nullptr;
      const bool use_packed = pk != nullptr && lo % cpu::kPackRows == 0 && hi % cpu::kPackRows == 0;
      const cpu::GemmFn gemm = use_packed ? k_->gemm_packed[w.type] : k_->gemm[w.type];
      if (gemm != nullptr) {
        const size_t rb = use_packed ? cpu::packed_row_bytes(w.type, n_in) : w.row_bytes;
        gemm(use_packed ? pk + lo * rb : w.row(lo), rb, hi - lo, act_.data(), ads_.data(), nb, B, n_in, job.y + lo,
             w.n_out);
        if (job.bias != nullptr)
          for (int64_t b = 0; b < B; ++b)
            for (int64_t rr = lo; rr < hi; ++rr) job.y[b * w.n_out + rr] += job.bias[rr];
      } else {
        const cpu::DotFn dot = k_->dot[w.type];
        const bool q = cpu::wtype_uses_act_blocks(w.type);
        for (int64_t rr = lo; rr < hi; ++rr) {
          const uint8_t* row = w.row(rr);
          const float bias = job.bias != nullptr ? job.bias[rr] : 0.0f;
          for (int64_t b = 0; b < B; ++b) {
            const void* a = q ? static_cast<const void*>(act_.data() + b * nb)
                              : static_cast<const void*>(x + b * n_in);
            job.y[b * w.n_out + rr] = dot(row, a, n_in) + bias;
          }
        }
      }
      r = base + hi;
      if (r < r1) {
        base += w.n_out;
        ++j;
      }
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

// For each entry b and head h: softmax(q·K[0..pos] / sqrt(hd)) @ V[0..pos] -> att (B, q_dim).
// Work items are tiles of one KV head: up to kAttnTile (entry, head) queries, the GQA
// group's heads of consecutive entries of one sequence (a prefill chunk's tokens), which
// share every K/V row the kernel reads.
void CpuForward::attention(std::span<const BatchEntry> batch, const KvCache& kv, int layer) {
  const ModelConfig& c = model_->config();
  const int hd = c.head_dim, group = c.n_head / c.n_head_kv, kvd = c.kv_dim(), bs = kv.block_size();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int heads_per_tile = std::min(group, cpu::kAttnTile);
  const int tokens_per_tile = std::max(1, cpu::kAttnTile / heads_per_tile);
  const int64_t B = static_cast<int64_t>(batch.size());
  // Per distinct sequence: its K and V block pointers for this layer, offset to each KV
  // head: kv_ptrs_[first + (kvh * n_blocks + blk) * 2 + {0: K, 1: V}].
  attn_tiles_.clear();
  kv_ptrs_.clear();
  size_t first = 0, n_blocks = 0;
  for (int64_t b0 = 0; b0 < B;) {
    const KvCache::SeqId seq = batch[b0].seq;
    if (b0 == 0 || seq != batch[b0 - 1].seq) {
      const auto& table = kv.block_table(seq);
      first = kv_ptrs_.size();
      n_blocks = table.size();
      for (int kvh = 0; kvh < c.n_head_kv; ++kvh)
        for (int32_t blk : table) {
          kv_ptrs_.push_back(kv.k(blk, layer) + kvh * hd);
          kv_ptrs_.push_back(kv.v(blk, layer) + kvh * hd);
        }
    }
    int64_t b1 = b0 + 1;
    while (b1 < B && b1 - b0 < tokens_per_tile && batch[b1].seq == seq) ++b1;
    for (int kvh = 0; kvh < c.n_head_kv; ++kvh)
      for (int h0 = kvh * group; h0 < (kvh + 1) * group; h0 += heads_per_tile)
        attn_tiles_.push_back({b0, b1, h0, std::min(h0 + heads_per_tile, (kvh + 1) * group),
                               first + static_cast<size_t>(kvh) * n_blocks * 2});
    b0 = b1;
  }
  pool_->parallel_for(static_cast<int64_t>(attn_tiles_.size()), 1, [&](int64_t t0, int64_t t1, int thread) {
    const float* qs[cpu::kAttnTile];
    float* outs[cpu::kAttnTile];
    int32_t n_pos[cpu::kAttnTile];
    // K and V pointers de-interleaved into this thread's scratch.
    std::vector<const float*>& kb = attn_k_[thread];
    std::vector<const float*>& vb = attn_v_[thread];
    for (int64_t t = t0; t < t1; ++t) {
      const AttnTile& tile = attn_tiles_[t];
      int n = 0;
      int32_t max_pos = 0;
      for (int64_t b = tile.b0; b < tile.b1; ++b)
        for (int h = tile.h0; h < tile.h1; ++h) {
          max_pos = std::max(max_pos, batch[b].pos);
          qs[n] = q_.data() + b * c.q_dim() + h * hd;
          outs[n] = att_.data() + b * c.q_dim() + h * hd;
          n_pos[n++] = batch[b].pos + 1;
        }
      const int32_t blocks = max_pos / bs + 1;
      kb.resize(static_cast<size_t>(blocks));
      vb.resize(static_cast<size_t>(blocks));
      for (int32_t i = 0; i < blocks; ++i) {
        kb[i] = kv_ptrs_[tile.ptrs + 2 * i];
        vb[i] = kv_ptrs_[tile.ptrs + 2 * i + 1];
      }
      k_->attention(qs, n_pos, n, kb.data(), vb.data(), bs, kvd, hd, scale, outs);
    }
  });
}

Result<void> CpuForward::layers(std::span<const BatchEntry> batch, KvCache& kv) {
  const ModelConfig& c = model_->config();
  const int64_t B = static_cast<int64_t>(batch.size());
  for (const BatchEntry& e : batch) {
    if (e.token < 0 || e.token >= c.n_vocab)
      return make_error(ErrorKind::kInvalidRequest, "token id " + std::to_string(e.token) + " is outside the vocabulary");
    if (e.pos < 0 || kv.blocks_for(e.pos + 1) > static_cast<int32_t>(kv.block_table(e.seq).size()))
      return make_error(ErrorKind::kInternal, "forward: no KV block reserved for position " + std::to_string(e.pos));
  }
  resize(B);
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
    pool_->parallel_for(B * F, 4096, [&](int64_t i0, int64_t i1, int) { k_->swiglu(g_.data() + i0, u_.data() + i0, i1 - i0); });
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
  if (B == 0) {
    logits.clear();
    return {};
  }
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
  // Every element is written below: resizing (not clearing) a reused buffer skips a
  // zero fill of n_out * n_vocab floats per step (16 MB at 32 rows of a 128k vocabulary).
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
