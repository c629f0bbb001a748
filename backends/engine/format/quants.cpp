// Reference (scalar) dequantisers and quantisers for the block formats declared in
// ggml_types.h. Blocks are copied out with memcpy so that any source alignment is
// safe (tensor data in a GGUF file is only as aligned as the file says).
//
// Quantiser error bounds (checked by tests/engine/format/ggml_types_test.cpp), with
// amax the largest |x| of a block and sub-block ranges as noted:
//   Q8_0: |err| <= amax/254 (+ fp16 rounding of d)
//   Q4_0: |err| <= amax/8     Q5_0: |err| <= amax/16     Q5_1: |err| <= range/62
//   Q4_K, Q6_K: single-pass min/max fit with 6-bit (Q4_K) or 8-bit (Q6_K) sub-block
//   scales; tests bound the RMS error relative to the data's RMS.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backends/engine/format/ggml_types.h"

namespace frugal::engine {
namespace {

template <class Block>
Block load_block(const void* src, int64_t index) {
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(src) + index * sizeof(Block), sizeof(Block));
  return b;
}

template <class Block>
void store_block(void* dst, int64_t index, const Block& b) {
  std::memcpy(static_cast<uint8_t*>(dst) + index * sizeof(Block), &b, sizeof(Block));
}

int nearest_int(float x) { return static_cast<int>(std::lround(x)); }

// ---- dequantisers: one block of values into y ----

void dequant_q8_0(const BlockQ8_0& b, float* y) {
  const float d = fp16_to_f32(b.d);
  for (int i = 0; i < kQK8_0; ++i) y[i] = d * static_cast<float>(b.qs[i]);
}

void dequant_q4_0(const BlockQ4_0& b, float* y) {
  const float d = fp16_to_f32(b.d);
  for (int j = 0; j < kQK4_0 / 2; ++j) {
    y[j] = d * static_cast<float>((b.qs[j] & 0xF) - 8);
    y[j + kQK4_0 / 2] = d * static_cast<float>((b.qs[j] >> 4) - 8);
  }
}

template <class Block>
uint32_t q5_high_bits(const Block& b) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, sizeof qh);
  return qh;
}

void dequant_q5_0(const BlockQ5_0& b, float* y) {
  const float d = fp16_to_f32(b.d);
  const uint32_t qh = q5_high_bits(b);
  for (int j = 0; j < kQK5_0 / 2; ++j) {
    const int lo = (b.qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * static_cast<float>(lo - 16);
    y[j + kQK5_0 / 2] = d * static_cast<float>(hi - 16);
  }
}

void dequant_q5_1(const BlockQ5_1& b, float* y) {
  const float d = fp16_to_f32(b.d);
  const float m = fp16_to_f32(b.m);
  const uint32_t qh = q5_high_bits(b);
  for (int j = 0; j < kQK5_1 / 2; ++j) {
    const int lo = (b.qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * static_cast<float>(lo) + m;
    y[j + kQK5_1 / 2] = d * static_cast<float>(hi) + m;
  }
}

void dequant_q4_k(const BlockQ4_K& b, float* y) {
  const float d = fp16_to_f32(b.d);
  const float dmin = fp16_to_f32(b.dmin);
  for (int c = 0; c < 4; ++c) {  // chunk c: sub-blocks 2c (low nibble), 2c+1 (high)
    uint8_t sc0, m0, sc1, m1;
    unpack_q4_k_scale_min(2 * c, b.scales, &sc0, &m0);
    unpack_q4_k_scale_min(2 * c + 1, b.scales, &sc1, &m1);
    const uint8_t* q = b.qs + 32 * c;
    float* out = y + 64 * c;
    for (int l = 0; l < 32; ++l) {
      out[l] = d * sc0 * static_cast<float>(q[l] & 0xF) - dmin * m0;
      out[l + 32] = d * sc1 * static_cast<float>(q[l] >> 4) - dmin * m1;
    }
  }
}

void dequant_q6_k(const BlockQ6_K& b, float* y) {
  const float d = fp16_to_f32(b.d);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = b.ql + 64 * half;
    const uint8_t* qh = b.qh + 32 * half;
    const int8_t* sc = b.scales + 8 * half;
    float* out = y + 128 * half;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * sc[is + 0] * static_cast<float>(q1);
      out[l + 32] = d * sc[is + 2] * static_cast<float>(q2);
      out[l + 64] = d * sc[is + 4] * static_cast<float>(q3);
      out[l + 96] = d * sc[is + 6] * static_cast<float>(q4);
    }
  }
}

// ---- quantisers: one block of values x into a block ----

BlockQ8_0 quant_q8_0(const float* x) {
  float amax = 0;
  for (int i = 0; i < kQK8_0; ++i) amax = std::max(amax, std::fabs(x[i]));
  BlockQ8_0 b{};
  b.d = f32_to_fp16(amax / 127.0f);
  const float d = fp16_to_f32(b.d);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < kQK8_0; ++i) b.qs[i] = static_cast<int8_t>(std::clamp(nearest_int(x[i] * id), -127, 127));
  return b;
}

// The value of largest magnitude, with its sign. Mapping it to the most negative
// code (-8 for 4 bits, -16 for 5) uses the asymmetric range fully on that side.
float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  return max;
}

BlockQ4_0 quant_q4_0(const float* x) {
  BlockQ4_0 b{};
  b.d = f32_to_fp16(signed_absmax(x, kQK4_0) / -8.0f);
  const float d = fp16_to_f32(b.d);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK4_0 / 2; ++j) {
    const int lo = std::clamp(nearest_int(x[j] * id) + 8, 0, 15);
    const int hi = std::clamp(nearest_int(x[j + kQK4_0 / 2] * id) + 8, 0, 15);
    b.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
  return b;
}

template <class Block>
void pack_q5(Block& b, const int* q) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    b.qs[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
    qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((q[j + 16] >> 4) & 1) << (j + 16);
  }
  std::memcpy(b.qh, &qh, sizeof qh);
}

BlockQ5_0 quant_q5_0(const float* x) {
  BlockQ5_0 b{};
  b.d = f32_to_fp16(signed_absmax(x, kQK5_0) / -16.0f);
  const float d = fp16_to_f32(b.d);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  int q[kQK5_0];
  for (int i = 0; i < kQK5_0; ++i) q[i] = std::clamp(nearest_int(x[i] * id) + 16, 0, 31);
  pack_q5(b, q);
  return b;
}

BlockQ5_1 quant_q5_1(const float* x) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < kQK5_1; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  BlockQ5_1 b{};
  b.d = f32_to_fp16((hi - lo) / 31.0f);
  b.m = f32_to_fp16(lo);
  const float d = fp16_to_f32(b.d);
  const float m = fp16_to_f32(b.m);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  int q[kQK5_1];
  for (int i = 0; i < kQK5_1; ++i) q[i] = std::clamp(nearest_int((x[i] - m) * id), 0, 31);
  pack_q5(b, q);
  return b;
}

BlockQ4_K quant_q4_k(const float* x) {
  // Per 32-value sub-block: x ~ scale * q - min with q in [0, 15], min >= 0 so that
  // the range always includes 0 (as ggml does). Then scales and mins are themselves
  // quantised to 6 bits against the super-block's d and dmin.
  float scale[8], min[8], max_scale = 0, max_min = 0;
  for (int s = 0; s < 8; ++s) {
    float lo = 0, hi = x[32 * s];
    for (int l = 0; l < 32; ++l) {
      lo = std::min(lo, x[32 * s + l]);
      hi = std::max(hi, x[32 * s + l]);
    }
    hi = std::max(hi, 0.0f);
    scale[s] = (hi - lo) / 15.0f;
    min[s] = -lo;
    max_scale = std::max(max_scale, scale[s]);
    max_min = std::max(max_min, min[s]);
  }
  BlockQ4_K b{};
  b.d = f32_to_fp16(max_scale / 63.0f);
  b.dmin = f32_to_fp16(max_min / 63.0f);
  const float d = fp16_to_f32(b.d);
  const float dmin = fp16_to_f32(b.dmin);
  uint8_t ls[8], lm[8];
  for (int s = 0; s < 8; ++s) {
    // Round the scale up so the sub-block's range still fits in 16 steps.
    ls[s] = d > 0 ? static_cast<uint8_t>(std::clamp(static_cast<int>(std::ceil(scale[s] / d)), 0, 63)) : 0;
    lm[s] = dmin > 0 ? static_cast<uint8_t>(std::clamp(nearest_int(min[s] / dmin), 0, 63)) : 0;
  }
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = ls[j];
    b.scales[j + 4] = lm[j];
  }
  for (int j = 4; j < 8; ++j) {
    b.scales[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
    b.scales[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
    b.scales[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
  }
  uint8_t q[kQK_K];
  for (int s = 0; s < 8; ++s) {
    const float sc = d * ls[s];
    const float mn = dmin * lm[s];
    for (int l = 0; l < 32; ++l) {
      const int v = sc > 0 ? nearest_int((x[32 * s + l] + mn) / sc) : 0;
      q[32 * s + l] = static_cast<uint8_t>(std::clamp(v, 0, 15));
    }
  }
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      b.qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    }
  }
  return b;
}

BlockQ6_K quant_q6_k(const float* x) {
  // Per 16-value sub-block: symmetric scale amax/31 so q - 32 stays in [-31, 31];
  // the 16 scales are quantised to int8 against d.
  float scale[16], max_scale = 0;
  for (int s = 0; s < 16; ++s) {
    float amax = 0;
    for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * s + l]));
    scale[s] = amax / 31.0f;
    max_scale = std::max(max_scale, scale[s]);
  }
  BlockQ6_K b{};
  b.d = f32_to_fp16(max_scale / 127.0f);
  const float d = fp16_to_f32(b.d);
  int q[kQK_K];
  for (int s = 0; s < 16; ++s) {
    const int ls = d > 0 ? std::clamp(static_cast<int>(std::ceil(scale[s] / d)), 0, 127) : 0;
    b.scales[s] = static_cast<int8_t>(ls);
    const float sc = d * static_cast<float>(ls);
    for (int l = 0; l < 16; ++l) {
      const int v = sc > 0 ? nearest_int(x[16 * s + l] / sc) : 0;
      q[16 * s + l] = std::clamp(v, -32, 31) + 32;
    }
  }
  for (int half = 0; half < 2; ++half) {
    const int* h = q + 128 * half;
    for (int l = 0; l < 32; ++l) {
      b.ql[64 * half + l] = static_cast<uint8_t>((h[l] & 0xF) | ((h[l + 64] & 0xF) << 4));
      b.ql[64 * half + l + 32] = static_cast<uint8_t>((h[l + 32] & 0xF) | ((h[l + 96] & 0xF) << 4));
      b.qh[32 * half + l] = static_cast<uint8_t>((h[l] >> 4) | ((h[l + 32] >> 4) << 2) |
                                                 ((h[l + 64] >> 4) << 4) | ((h[l + 96] >> 4) << 6));
    }
  }
  return b;
}

template <class Block, void (*Fn)(const Block&, float*)>
void dequant_blocks(const void* src, float* dst, int64_t n, int qk) {
  for (int64_t i = 0; i < n / qk; ++i) Fn(load_block<Block>(src, i), dst + i * qk);
}

template <class Block, Block (*Fn)(const float*)>
void quant_blocks(const float* src, void* dst, int64_t n, int qk) {
  for (int64_t i = 0; i < n / qk; ++i) store_block(dst, i, Fn(src + i * qk));
}

Result<void> check_row(GgmlType type, int64_t n, const char* what) {
  if (!has_reference_kernels(type)) {
    return make_error(ErrorKind::kInvalidRequest,
                      std::string(what) + ": no reference kernel for tensor type " + type_name(type) +
                          " (id " + std::to_string(static_cast<uint32_t>(type)) + ")");
  }
  if (n < 0 || n % block_size(type) != 0) {
    return make_error(ErrorKind::kInvalidRequest,
                      std::string(what) + ": row of " + std::to_string(n) + " values is not a multiple of " +
                          type_name(type) + "'s block size " + std::to_string(block_size(type)));
  }
  return {};
}

}  // namespace

Result<void> dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  FRUGAL_TRY(check_row(type, n, "dequantize_row"));
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); break;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = type == GgmlType::kF16 ? fp16_to_f32(h) : bf16_to_f32(h);
      }
      break;
    case GgmlType::kQ8_0: dequant_blocks<BlockQ8_0, dequant_q8_0>(src, dst, n, kQK8_0); break;
    case GgmlType::kQ4_0: dequant_blocks<BlockQ4_0, dequant_q4_0>(src, dst, n, kQK4_0); break;
    case GgmlType::kQ5_0: dequant_blocks<BlockQ5_0, dequant_q5_0>(src, dst, n, kQK5_0); break;
    case GgmlType::kQ5_1: dequant_blocks<BlockQ5_1, dequant_q5_1>(src, dst, n, kQK5_1); break;
    case GgmlType::kQ4_K: dequant_blocks<BlockQ4_K, dequant_q4_k>(src, dst, n, kQK_K); break;
    case GgmlType::kQ6_K: dequant_blocks<BlockQ6_K, dequant_q6_k>(src, dst, n, kQK_K); break;
    default: break;  // unreachable: check_row rejected it
  }
  return {};
}

Result<void> quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  FRUGAL_TRY(check_row(type, n, "quantize_row"));
  auto* bytes = static_cast<uint8_t*>(dst);
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); break;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = type == GgmlType::kF16 ? f32_to_fp16(src[i]) : f32_to_bf16(src[i]);
        std::memcpy(bytes + 2 * i, &h, 2);
      }
      break;
    case GgmlType::kQ8_0: quant_blocks<BlockQ8_0, quant_q8_0>(src, dst, n, kQK8_0); break;
    case GgmlType::kQ4_0: quant_blocks<BlockQ4_0, quant_q4_0>(src, dst, n, kQK4_0); break;
    case GgmlType::kQ5_0: quant_blocks<BlockQ5_0, quant_q5_0>(src, dst, n, kQK5_0); break;
    case GgmlType::kQ5_1: quant_blocks<BlockQ5_1, quant_q5_1>(src, dst, n, kQK5_1); break;
    case GgmlType::kQ4_K: quant_blocks<BlockQ4_K, quant_q4_k>(src, dst, n, kQK_K); break;
    case GgmlType::kQ6_K: quant_blocks<BlockQ6_K, quant_q6_k>(src, dst, n, kQK_K); break;
    default: break;
  }
  return {};
}

}  // namespace frugal::engine
