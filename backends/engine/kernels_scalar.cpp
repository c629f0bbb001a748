// Portable kernels: plain loops over GGML blocks. The reference for the SIMD set and
// the fallback on CPUs without AVX2.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backends/engine/kernel_blocks.h"
#include "backends/engine/kernels.h"

namespace frugal::engine::cpu {

float fp16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3FF;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t absx = x & 0x7FFFFFFF;
  if (absx >= 0x7F800000) return static_cast<uint16_t>(sign | 0x7C00 | (absx > 0x7F800000 ? 0x200 : 0));
  if (absx >= 0x477FF000) return static_cast<uint16_t>(sign | 0x7C00);  // overflow -> inf
  if (absx < 0x38800000) {  // subnormal or zero in fp16: round to nearest even
    const float af = std::fabs(f);
    const float scaled = af * 16777216.0f;  // 2^24
    uint32_t m = static_cast<uint32_t>(std::nearbyint(scaled));
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t mant = absx & 0x7FFFFF;
  uint32_t exp = (absx >> 23) - 127 + 15;
  uint32_t h = (exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;  // may carry into exp: correct
  return static_cast<uint16_t>(sign | h);
}

namespace {

using namespace blocks;

void quantize_act_scalar(const float* x, ActBlock* y, int64_t n) {
  for (int64_t b = 0; b < n / kActBlock; ++b) {
    const float* xb = x + b * kActBlock;
    float amax = 0.0f;
    for (int i = 0; i < kActBlock; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t s = 0;
    for (int i = 0; i < kActBlock; ++i) {
      const int v = static_cast<int>(std::nearbyint(xb[i] * id));
      y[b].qs[i] = static_cast<int8_t>(v);
      s += v;
    }
    y[b].d = d;
    y[b].s = s;
  }
}

// ---- f32 activation types -------------------------------------------------------------

float dot_f32_w(const void* row, const void* xv, int64_t n) {
  const float* w = static_cast<const float*>(row);
  const float* x = static_cast<const float*>(xv);
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += w[i] * x[i];
  return acc;
}
float dot_f16_w(const void* row, const void* xv, int64_t n) {
  const uint16_t* w = static_cast<const uint16_t*>(row);
  const float* x = static_cast<const float*>(xv);
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += fp16_to_f32(w[i]) * x[i];
  return acc;
}
float dot_bf16_w(const void* row, const void* xv, int64_t n) {
  const uint16_t* w = static_cast<const uint16_t*>(row);
  const float* x = static_cast<const float*>(xv);
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += bf16_to_f32(w[i]) * x[i];
  return acc;
}
void dequant_f32(const void* row, float* y, int64_t n) { std::memcpy(y, row, n * sizeof(float)); }
void dequant_f16(const void* row, float* y, int64_t n) {
  const uint16_t* w = static_cast<const uint16_t*>(row);
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_f32(w[i]);
}
void dequant_bf16(const void* row, float* y, int64_t n) {
  const uint16_t* w = static_cast<const uint16_t*>(row);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(w[i]);
}

// ---- 32-element block types ----------------------------------------------------------
// Each decodes block b's q values (offset not applied) into int8 q[32], plus how the
// block's x·a folds: acc += dq * da * (sum q*a) + (off * da * sum a).

inline void q4_0_q(const Q4_0& b, int8_t* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>(b.qs[j] & 0xF);
    q[j + 16] = static_cast<int8_t>(b.qs[j] >> 4);
  }
}
inline void q5_q(const uint8_t* qh4, const uint8_t* qs, int8_t* q) {
  uint32_t qh;
  std::memcpy(&qh, qh4, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>((qs[j] & 0xF) | (((qh >> j) & 1) << 4));
    q[j + 16] = static_cast<int8_t>((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
  }
}
inline int32_t idot32(const int8_t* q, const int8_t* a) {
  int32_t s = 0;
  for (int j = 0; j < 32; ++j) s += q[j] * a[j];
  return s;
}

float dot_q4_0(const void* row, const void* xv, int64_t n) {
  const Q4_0* w = static_cast<const Q4_0*>(row);
  const ActBlock* a = static_cast<const ActBlock*>(xv);
  float acc = 0.0f;
  int8_t q[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    q4_0_q(w[b], q);
    acc += fp16_to_f32(w[b].d) * a[b].d * static_cast<float>(idot32(q, a[b].qs) - 8 * a[b].s);
  }
  return acc;
}
float dot_q5_0(const void* row, const void* xv, int64_t n) {
  const Q5_0* w = static_cast<const Q5_0*>(row);
  const ActBlock* a = static_cast<const ActBlock*>(xv);
  float acc = 0.0f;
  int8_t q[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    q5_q(w[b].qh, w[b].qs, q);
    acc += fp16_to_f32(w[b].d) * a[b].d * static_cast<float>(idot32(q, a[b].qs) - 16 * a[b].s);
  }
  return acc;
}
float dot_q5_1(const void* row, const void* xv, int64_t n) {
  const Q5_1* w = static_cast<const Q5_1*>(row);
  const ActBlock* a = static_cast<const ActBlock*>(xv);
  float acc = 0.0f;
  int8_t q[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    q5_q(w[b].qh, w[b].qs, q);
    acc += fp16_to_f32(w[b].d) * a[b].d * static_cast<float>(idot32(q, a[b].qs)) +
           fp16_to_f32(w[b].m) * a[b].d * static_cast<float>(a[b].s);
  }
  return acc;
}
float dot_q8_0(const void* row, const void* xv, int64_t n) {
  const Q8_0* w = static_cast<const Q8_0*>(row);
  const ActBlock* a = static_cast<const ActBlock*>(xv);
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b)
    acc += fp16_to_f32(w[b].d) * a[b].d * static_cast<float>(idot32(w[b].qs, a[b].qs));
  return acc;
}

void dequant_q4_0(const void* row, float* y, int64_t n) {
  const Q4_0* w = static_cast<const Q4_0*>(row);
  int8_t q[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    q4_0_q(w[b], q);
    const float d = fp16_to_f32(w[b].d);
    for (int j = 0; j < 32; ++j) y[b * 32 + j] = static_cast<float>(q[j] - 8) * d;
  }
}
void dequant_q5_0(const void* row, float* y, int64_t n) {
  const Q5_0* w = static_cast<const Q5_0*>(row);
  int8_t q[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    q5_q(w[b].qh, w[b].qs, q);
    const float d = fp16_to_f32(w[b].d);
    for (int j = 0; j < 32; ++j) y[b * 32 + j] = static_cast<float>(q[j] - 16) * d;
  }
}
void dequant_q5_1(const void* row, float* y, int64_t n) {
  const Q5_1* w = static_cast<const Q5_1*>(row);
  int8_t q[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    q5_q(w[b].qh, w[b].qs, q);
    const float d = fp16_to_f32(w[b].d), m = fp16_to_f32(w[b].m);
    for (int j = 0; j < 32; ++j) y[b * 32 + j] = static_cast<float>(q[j]) * d + m;
  }
}
void dequant_q8_0(const void* row, float* y, int64_t n) {
  const Q8_0* w = static_cast<const Q8_0*>(row);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float d = fp16_to_f32(w[b].d);
    for (int j = 0; j < 32; ++j) y[b * 32 + j] = static_cast<float>(w[b].qs[j]) * d;
  }
}

// ---- K-quants (256-element super-blocks, consumed as 8 ActBlocks) ----------------------

// Q4_K: chunk c (64 elements) = low nibbles of qs[32c..32c+32] then high nibbles.
inline void q4k_q(const Q4_K& b, int sub, int8_t* q) {
  const uint8_t* qs = b.qs + 32 * (sub / 2);
  const int shift = (sub & 1) ? 4 : 0;
  for (int l = 0; l < 32; ++l) q[l] = static_cast<int8_t>((qs[l] >> shift) & 0xF);
}
// Q6_K: element e of the super-block, half h = e/128, quarter qd = (e%128)/32, l = e%32.
inline void q6k_q(const Q6_K& b, int sub, int8_t* q) {
  const int h = sub / 4, qd = sub % 4;
  const uint8_t* ql = b.ql + 64 * h + ((qd & 1) ? 32 : 0);
  const uint8_t* qh = b.qh + 32 * h;
  const int lshift = (qd >= 2) ? 4 : 0;
  for (int l = 0; l < 32; ++l)
    q[l] = static_cast<int8_t>((((ql[l] >> lshift) & 0xF) | (((qh[l] >> (2 * qd)) & 3) << 4)) - 32);
}

float dot_q4_k(const void* row, const void* xv, int64_t n) {
  const Q4_K* w = static_cast<const Q4_K*>(row);
  const ActBlock* a = static_cast<const ActBlock*>(xv);
  float acc = 0.0f;
  int8_t q[32];
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float d = fp16_to_f32(w[b].d), dmin = fp16_to_f32(w[b].dmin);
    for (int sub = 0; sub < 8; ++sub) {
      const ActBlock& ab = a[b * 8 + sub];
      uint8_t sc, m;
      q4k_scale_min(sub, w[b].scales, &sc, &m);
      q4k_q(w[b], sub, q);
      acc += d * sc * ab.d * static_cast<float>(idot32(q, ab.qs)) - dmin * m * ab.d * static_cast<float>(ab.s);
    }
  }
  return acc;
}
float dot_q6_k(const void* row, const void* xv, int64_t n) {
  const Q6_K* w = static_cast<const Q6_K*>(row);
  const ActBlock* a = static_cast<const ActBlock*>(xv);
  float acc = 0.0f;
  int8_t q[32];
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float d = fp16_to_f32(w[b].d);
    for (int sub = 0; sub < 8; ++sub) {
      const ActBlock& ab = a[b * 8 + sub];
      q6k_q(w[b], sub, q);
      int32_t s0 = 0, s1 = 0;
      for (int l = 0; l < 16; ++l) s0 += q[l] * ab.qs[l];
      for (int l = 16; l < 32; ++l) s1 += q[l] * ab.qs[l];
      acc += d * ab.d * static_cast<float>(w[b].scales[2 * sub] * s0 + w[b].scales[2 * sub + 1] * s1);
    }
  }
  return acc;
}
void dequant_q4_k(const void* row, float* y, int64_t n) {
  const Q4_K* w = static_cast<const Q4_K*>(row);
  int8_t q[32];
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float d = fp16_to_f32(w[b].d), dmin = fp16_to_f32(w[b].dmin);
    for (int sub = 0; sub < 8; ++sub) {
      uint8_t sc, m;
      q4k_scale_min(sub, w[b].scales, &sc, &m);
      q4k_q(w[b], sub, q);
      for (int l = 0; l < 32; ++l) y[b * kQK + sub * 32 + l] = d * sc * q[l] - dmin * m;
    }
  }
}
void dequant_q6_k(const void* row, float* y, int64_t n) {
  const Q6_K* w = static_cast<const Q6_K*>(row);
  int8_t q[32];
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float d = fp16_to_f32(w[b].d);
    for (int sub = 0; sub < 8; ++sub) {
      q6k_q(w[b], sub, q);
      for (int l = 0; l < 32; ++l)
        y[b * kQK + sub * 32 + l] = d * w[b].scales[2 * sub + l / 16] * q[l];
    }
  }
}

float dot_f32_f32(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}
void axpy_f32(float s, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}
void swiglu(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}
float exp_sum(float* x, int64_t n, float mx) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i] = std::exp(x[i] - mx);
  return sum;
}

// The portable attention: the same spans and online softmax as the SIMD sets.
void attention(const float* const* q, const int32_t* n_pos, int n_q, const float* const* k_blocks,
               const float* const* v_blocks, int32_t bs, int64_t kv_stride, int hd, float scale, float* const* out) {
  float m[kAttnTile], l[kAttnTile], s[kAttnSpan];
  const float* kr[kAttnSpan];
  const float* vr[kAttnSpan];
  int32_t end = 0;
  for (int i = 0; i < n_q; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
    std::fill(out[i], out[i] + hd, 0.0f);
    end = std::max(end, n_pos[i]);
  }
  for (int32_t p0 = 0; p0 < end; p0 += kAttnSpan) {
    const int32_t span = std::min(kAttnSpan, end - p0);
    for (int32_t j = 0; j < span; ++j) {
      const int32_t p = p0 + j;
      kr[j] = k_blocks[p / bs] + (p % bs) * kv_stride;
      vr[j] = v_blocks[p / bs] + (p % bs) * kv_stride;
    }
    for (int i = 0; i < n_q; ++i) {
      if (n_pos[i] <= p0) continue;
      const int32_t np = std::min(span, n_pos[i] - p0);
      const float* qi = q[i];
      float mx = m[i];
      for (int32_t j = 0; j < np; ++j) {
        float acc = 0.0f;
        for (int d = 0; d < hd; ++d) acc += qi[d] * kr[j][d];
        s[j] = acc * scale;
        mx = std::max(mx, s[j]);
      }
      float* o = out[i];
      if (mx != m[i]) {
        const float corr = std::exp(m[i] - mx);
        l[i] *= corr;
        for (int d = 0; d < hd; ++d) o[d] *= corr;
        m[i] = mx;
      }
      for (int32_t j = 0; j < np; ++j) {
        s[j] = std::exp(s[j] - mx);
        l[i] += s[j];
        for (int d = 0; d < hd; ++d) o[d] += s[j] * vr[j][d];
      }
    }
  }
  for (int i = 0; i < n_q; ++i) {
    const float inv = 1.0f / l[i];
    for (int d = 0; d < hd; ++d) out[i][d] *= inv;
  }
}

KernelSet make_scalar() {
  KernelSet k;
  k.name = "scalar";
  k.quantize_act = quantize_act_scalar;
  auto set = [&](WType t, DotFn d, DequantFn q) {
    k.dot[static_cast<int>(t)] = d;
    k.dequant[static_cast<int>(t)] = q;
  };
  set(WType::kF32, dot_f32_w, dequant_f32);
  set(WType::kF16, dot_f16_w, dequant_f16);
  set(WType::kBF16, dot_bf16_w, dequant_bf16);
  set(WType::kQ4_0, dot_q4_0, dequant_q4_0);
  set(WType::kQ5_0, dot_q5_0, dequant_q5_0);
  set(WType::kQ5_1, dot_q5_1, dequant_q5_1);
  set(WType::kQ8_0, dot_q8_0, dequant_q8_0);
  set(WType::kQ4_K, dot_q4_k, dequant_q4_k);
  set(WType::kQ6_K, dot_q6_k, dequant_q6_k);
  k.dot_f32 = dot_f32_f32;
  k.axpy_f32 = axpy_f32;
  k.swiglu = swiglu;
  k.exp_sum = exp_sum;
  k.attention = attention;
  return k;
}

bool env_set(const char* name) {
  const char* env = std::getenv(name);
  return env != nullptr && env[0] != '\0' && env[0] != '0';
}

}  // namespace

void fill_scalar_fallbacks(KernelSet* k) {
  const KernelSet& s = scalar_kernels();
  k->quantize_act = s.quantize_act;
  k->swiglu = s.swiglu;
  k->exp_sum = s.exp_sum;
  k->attention = s.attention;
  for (int i = 0; i < 32; ++i) k->dequant[i] = s.dequant[i];
}

bool wtype_packable(uint32_t type) {
  return type == static_cast<uint32_t>(WType::kQ8_0) || type == static_cast<uint32_t>(WType::kQ4_0) ||
         type == static_cast<uint32_t>(WType::kQ4_K);
}

size_t packed_group_bytes(uint32_t type) {
  // Q4_K: d[8], dmin[8], then the six-bit scales and mins unpacked to bytes
  // (sc[sub][row], m[sub][row]), then qs: 4 chunks x 8 four-byte groups x 8 rows.
  if (type == static_cast<uint32_t>(WType::kQ4_K)) return 32 + 128 + 1024;
  return wtype_block_bytes(type) * kPackRows;
}

size_t packed_row_bytes(uint32_t type, int64_t n) {
  return static_cast<size_t>(n / wtype_block_elems(type)) * packed_group_bytes(type) / kPackRows;
}

void pack_rows(uint32_t type, const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n, uint8_t* out) {
  if (type == static_cast<uint32_t>(WType::kQ4_K)) {
    const int64_t nsb = n / kQK;
    const size_t gb = packed_group_bytes(type);
    for (int64_t g = 0; g < n_rows / kPackRows; ++g) {
      for (int64_t b = 0; b < nsb; ++b) {
        uint8_t* o = out + static_cast<size_t>(g * nsb + b) * gb;
        for (int r = 0; r < kPackRows; ++r) {
          const Q4_K& blk = reinterpret_cast<const Q4_K*>(w + (g * kPackRows + r) * row_bytes)[b];
          std::memcpy(o + 2 * r, &blk.d, 2);
          std::memcpy(o + 16 + 2 * r, &blk.dmin, 2);
          for (int j = 0; j < 8; ++j) q4k_scale_min(j, blk.scales, o + 32 + j * kPackRows + r, o + 96 + j * kPackRows + r);
          for (int c = 0; c < 4; ++c)
            for (int k = 0; k < 8; ++k) std::memcpy(o + 160 + ((c * 8 + k) * kPackRows + r) * 4, blk.qs + 32 * c + 4 * k, 4);
        }
      }
    }
    return;
  }
  const size_t bb = wtype_block_bytes(type);
  const int64_t nb = n / kActBlock;
  const size_t qbytes = bb - 2;  // after the fp16 scale: 32 (Q8_0) or 16 (Q4_0)
  for (int64_t g = 0; g < n_rows / kPackRows; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* o = out + (static_cast<size_t>(g * nb + b)) * bb * kPackRows;
      for (int r = 0; r < kPackRows; ++r) {
        const uint8_t* blk = w + (g * kPackRows + r) * row_bytes + b * bb;
        std::memcpy(o + 2 * r, blk, 2);
        for (size_t k = 0; k < qbytes / 4; ++k) std::memcpy(o + 2 * kPackRows + (k * kPackRows + r) * 4, blk + 2 + 4 * k, 4);
        if (type == static_cast<uint32_t>(WType::kQ8_0))  // stored as u8 = q + 128 (kernels.h)
          for (size_t k = 0; k < qbytes; ++k) o[2 * kPackRows + (k / 4 * kPackRows + r) * 4 + k % 4] ^= 0x80;
      }
    }
  }
}

void act_block_ds(const ActBlock* a, int64_t n, float* ds) {
  for (int64_t i = 0; i < n; ++i) ds[i] = a[i].d * static_cast<float>(a[i].s);
}

std::vector<const KernelSet*> available_kernels() {
  std::vector<const KernelSet*> v = {&scalar_kernels()};
  if (avx2_kernels() != nullptr) v.push_back(avx2_kernels());
  if (avx512_kernels() != nullptr) v.push_back(avx512_kernels());
  return v;
}

const KernelSet& scalar_kernels() {
  static const KernelSet k = make_scalar();
  return k;
}

const KernelSet& default_kernels() {
  static const KernelSet* k = [] {
    if (env_set("FRUGAL_ENGINE_NO_SIMD")) return &scalar_kernels();
    if (!env_set("FRUGAL_ENGINE_NO_AVX512") && avx512_kernels() != nullptr) return avx512_kernels();
    const KernelSet* avx = avx2_kernels();
    return avx != nullptr ? avx : &scalar_kernels();
  }();
  return *k;
}

const char* wtype_name(uint32_t type) {
  switch (static_cast<WType>(type)) {
    case WType::kF32: return "F32";
    case WType::kF16: return "F16";
    case WType::kBF16: return "BF16";
    case WType::kQ4_0: return "Q4_0";
    case WType::kQ5_0: return "Q5_0";
    case WType::kQ5_1: return "Q5_1";
    case WType::kQ8_0: return "Q8_0";
    case WType::kQ4_K: return "Q4_K";
    case WType::kQ6_K: return "Q6_K";
  }
  return "unsupported";
}

bool wtype_supported(uint32_t type) { return type < 32 && scalar_kernels().dot[type] != nullptr; }

int64_t wtype_block_elems(uint32_t type) {
  switch (static_cast<WType>(type)) {
    case WType::kF32: case WType::kF16: case WType::kBF16: return 1;
    case WType::kQ4_K: case WType::kQ6_K: return kQK;
    default: return 32;
  }
}

size_t wtype_block_bytes(uint32_t type) {
  switch (static_cast<WType>(type)) {
    case WType::kF32: return 4;
    case WType::kF16: case WType::kBF16: return 2;
    case WType::kQ4_0: return sizeof(Q4_0);
    case WType::kQ5_0: return sizeof(Q5_0);
    case WType::kQ5_1: return sizeof(Q5_1);
    case WType::kQ8_0: return sizeof(Q8_0);
    case WType::kQ4_K: return sizeof(Q4_K);
    case WType::kQ6_K: return sizeof(Q6_K);
  }
  return 0;
}

size_t wtype_row_bytes(uint32_t type, int64_t n) {
  return static_cast<size_t>(n / wtype_block_elems(type)) * wtype_block_bytes(type);
}

bool wtype_uses_act_blocks(uint32_t type) {
  const auto t = static_cast<WType>(type);
  return !(t == WType::kF32 || t == WType::kF16 || t == WType::kBF16);
}

}  // namespace frugal::engine::cpu
