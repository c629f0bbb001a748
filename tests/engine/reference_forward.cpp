#include "reference_forward.h"

#include <cmath>

namespace frugal::engine::testing {

namespace {
bool load_tensor(const GgufFile& f, const std::string& name, std::vector<float>* out, std::string* err) {
  const TensorInfo* t = f.tensor(name);
  if (t == nullptr) {
    *err = "missing " + name;
    return false;
  }
  out->resize(t->n_elements());
  const int64_t n = t->ne[0];
  const size_t rb = t->row_bytes();
  for (int64_t r = 0; r < t->n_rows(); ++r) {
    auto res = dequantize_row(t->type, static_cast<const uint8_t*>(t->data) + r * rb, out->data() + r * n, n);
    if (!res.ok()) {
      *err = name + ": " + res.error().message;
      return false;
    }
  }
  return true;
}

// y (n_out,) = W (n_out, n_in) x (n_in,)
void matvec(const std::vector<float>& w, const std::vector<float>& x, std::vector<float>& y, int n_in, int n_out) {
  y.assign(n_out, 0.0f);
  for (int o = 0; o < n_out; ++o) {
    double s = 0;
    for (int i = 0; i < n_in; ++i) s += static_cast<double>(w[static_cast<size_t>(o) * n_in + i]) * x[i];
    y[o] = static_cast<float>(s);
  }
}

std::vector<float> rmsnorm(const std::vector<float>& x, const std::vector<float>& w, float eps) {
  double ss = 0;
  for (float v : x) ss += static_cast<double>(v) * v;
  const double scale = 1.0 / std::sqrt(ss / x.size() + eps);
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<float>(x[i] * scale * w[i]);
  return y;
}
}  // namespace

std::string ReferenceModel::load(const GgufFile& f, ReferenceModel* m) {
  const std::string arch = f.architecture();
  if (arch != "llama" && arch != "qwen2") return "unsupported arch " + arch;
  m->neox_ = arch == "qwen2";
  const std::string a = arch + ".";
  m->n_embd_ = static_cast<int>(*f.get_u32(a + "embedding_length"));
  m->n_head_ = static_cast<int>(*f.get_u32(a + "attention.head_count"));
  m->n_head_kv_ = static_cast<int>(*f.get_u32(a + "attention.head_count_kv"));
  m->n_ff_ = static_cast<int>(*f.get_u32(a + "feed_forward_length"));
  m->eps_ = *f.get_f32(a + "attention.layer_norm_rms_epsilon");
  m->rope_base_ = *f.get_f32_or(a + "rope.freq_base", 10000.0f);
  m->head_dim_ = m->n_embd_ / m->n_head_;
  const int n_layer = static_cast<int>(*f.get_u32(a + "block_count"));
  std::string err;
  if (!load_tensor(f, "token_embd.weight", &m->embd_, &err)) return err;
  m->n_vocab_ = static_cast<int>(m->embd_.size() / m->n_embd_);
  if (!load_tensor(f, "output_norm.weight", &m->out_norm_, &err)) return err;
  if (f.tensor("output.weight") != nullptr) {
    if (!load_tensor(f, "output.weight", &m->output_, &err)) return err;
  } else {
    m->output_ = m->embd_;
  }
  m->layers_.resize(n_layer);
  for (int l = 0; l < n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    Layer& L = m->layers_[l];
    for (auto [name, dst] : {std::pair{"attn_norm.weight", &L.attn_norm}, {"attn_q.weight", &L.wq},
                             {"attn_k.weight", &L.wk}, {"attn_v.weight", &L.wv}, {"attn_output.weight", &L.wo},
                             {"ffn_norm.weight", &L.ffn_norm}, {"ffn_gate.weight", &L.w_gate},
                             {"ffn_up.weight", &L.w_up}, {"ffn_down.weight", &L.w_down}})
      if (!load_tensor(f, p + name, dst, &err)) return err;
    if (f.tensor(p + "attn_q.bias") != nullptr) {
      for (auto [name, dst] : {std::pair{"attn_q.bias", &L.bq}, {"attn_k.bias", &L.bk}, {"attn_v.bias", &L.bv}})
        if (!load_tensor(f, p + name, dst, &err)) return err;
    }
  }
  return {};
}

std::vector<float> ReferenceModel::forward(const std::vector<int32_t>& tokens) const {
  const int T = static_cast<int>(tokens.size()), E = n_embd_, hd = head_dim_;
  const int qd = n_head_ * hd, kvd = n_head_kv_ * hd;
  std::vector<std::vector<float>> x(T, std::vector<float>(E));
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < E; ++i) x[t][i] = embd_[static_cast<size_t>(tokens[t]) * E + i];
  auto rope = [&](std::vector<float>& v, int n_heads, int pos) {
    for (int h = 0; h < n_heads; ++h) {
      for (int i = 0; i < hd / 2; ++i) {
        const double theta = pos * std::pow(static_cast<double>(rope_base_), -2.0 * i / hd);
        const int i0 = neox_ ? h * hd + i : h * hd + 2 * i;
        const int i1 = neox_ ? h * hd + i + hd / 2 : h * hd + 2 * i + 1;
        const double a = v[i0], b = v[i1];
        v[i0] = static_cast<float>(a * std::cos(theta) - b * std::sin(theta));
        v[i1] = static_cast<float>(a * std::sin(theta) + b * std::cos(theta));
      }
    }
  };
  for (const Layer& L : layers_) {
    std::vector<std::vector<float>> q(T), k(T), v(T);
    for (int t = 0; t < T; ++t) {
      const auto xn = rmsnorm(x[t], L.attn_norm, eps_);
      matvec(L.wq, xn, q[t], E, qd);
      matvec(L.wk, xn, k[t], E, kvd);
      matvec(L.wv, xn, v[t], E, kvd);
      if (!L.bq.empty()) {
        for (int i = 0; i < qd; ++i) q[t][i] += L.bq[i];
        for (int i = 0; i < kvd; ++i) k[t][i] += L.bk[i];
        for (int i = 0; i < kvd; ++i) v[t][i] += L.bv[i];
      }
      rope(q[t], n_head_, t);
      rope(k[t], n_head_kv_, t);
    }
    for (int t = 0; t < T; ++t) {
      std::vector<float> att(qd, 0.0f);
      for (int h = 0; h < n_head_; ++h) {
        const int kh = h / (n_head_ / n_head_kv_);
        std::vector<double> s(t + 1);
        double mx = -1e300;
        for (int p = 0; p <= t; ++p) {
          double d = 0;
          for (int i = 0; i < hd; ++i) d += static_cast<double>(q[t][h * hd + i]) * k[p][kh * hd + i];
          s[p] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[p]);
        }
        double sum = 0;
        for (auto& e : s) sum += e = std::exp(e - mx);
        for (int i = 0; i < hd; ++i) {
          double o = 0;
          for (int p = 0; p <= t; ++p) o += s[p] / sum * v[p][kh * hd + i];
          att[h * hd + i] = static_cast<float>(o);
        }
      }
      std::vector<float> o;
      matvec(L.wo, att, o, qd, E);
      for (int i = 0; i < E; ++i) x[t][i] += o[i];
      const auto xn = rmsnorm(x[t], L.ffn_norm, eps_);
      std::vector<float> g, u, d;
      matvec(L.w_gate, xn, g, E, n_ff_);
      matvec(L.w_up, xn, u, E, n_ff_);
      for (int i = 0; i < n_ff_; ++i) g[i] = static_cast<float>(g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i]);
      matvec(L.w_down, g, d, n_ff_, E);
      for (int i = 0; i < E; ++i) x[t][i] += d[i];
    }
  }
  std::vector<float> logits(static_cast<size_t>(T) * n_vocab_);
  for (int t = 0; t < T; ++t) {
    const auto xn = rmsnorm(x[t], out_norm_, eps_);
    std::vector<float> l;
    matvec(output_, xn, l, E, n_vocab_);
    std::copy(l.begin(), l.end(), logits.begin() + static_cast<size_t>(t) * n_vocab_);
  }
  return logits;
}

}  // namespace frugal::engine::testing
