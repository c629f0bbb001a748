// AVX2/FMA/F16C kernels, compiled with per-function target attributes so the library
// still runs on CPUs without them (default_kernels() only hands this set out after
// __builtin_cpu_supports says yes). Integer dot products use maddubs (u8 x s8 pairs ->
// i16, no saturation for our ranges: |q| <= 63 unsigned or sign-folded int8) then madd
// to i32 and one FMA per 32-element block. Q8_0, Q4_0, Q4_K and Q6_K (dot and batched
// matmul) come from kernels_gemm.inc, shared with the AVX-512 VNNI set.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backends/engine/kernel_blocks.h"
#include "backends/engine/kernels.h"

#define FRUGAL_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace frugal::engine::cpu {

void fill_scalar_fallbacks(KernelSet* k);  // kernels_scalar.cpp

namespace {

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
namespace gemm_avx2 {
#define FRUGAL_GEMM_VNNI 0
#include "backends/engine/kernels_gemm.inc"
#undef FRUGAL_GEMM_VNNI
}  // namespace gemm_avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

using namespace blocks;

FRUGAL_AVX2 inline float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}
FRUGAL_AVX2 inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
// 32 x (u8 * s8) -> 8 x i32 partial sums, as floats.
FRUGAL_AVX2 inline __m256 dot_u8s8(__m256i u, __m256i s) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
FRUGAL_AVX2 inline __m256i load32(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
// 16 packed nibble bytes -> 32 bytes: low nibbles (elements 0..15) then high (16..31).
FRUGAL_AVX2 inline __m256i unpack_nibbles16(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}
// Bit k of the 32-bit qh -> byte k = 0x10 or 0 (Q5's fifth bit).
FRUGAL_AVX2 inline __m256i fifth_bits(const uint8_t* qh4) {
  uint32_t qh;
  std::memcpy(&qh, qh4, 4);
  const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  __m256i r = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)), shuf);
  r = _mm256_cmpeq_epi8(_mm256_and_si256(r, bit), bit);
  return _mm256_and_si256(r, _mm256_set1_epi8(0x10));
}

// W row (n,) · x (n,) for F32/F16/BF16 weights with f32 activations.
FRUGAL_AVX2 float dot_f32_w(const void* row, const void* xv, int64_t n) {
  const float* w = static_cast<const float*>(row);
  const float* x = static_cast<const float*>(xv);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
  }
  float acc = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) acc += w[i] * x[i];
  return acc;
}
FRUGAL_AVX2 float dot_f16_w(const void* row, const void* xv, int64_t n) {
  const uint16_t* w = static_cast<const uint16_t*>(row);
  const float* x = static_cast<const float*>(xv);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
    a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
  }
  float acc = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) acc += h2f(w[i]) * x[i];
  return acc;
}
FRUGAL_AVX2 float dot_bf16_w(const void* row, const void* xv, int64_t n) {
  const uint16_t* w = static_cast<const uint16_t*>(row);
  const float* x = static_cast<const float*>(xv);
  __m256 a0 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(u, 16)), _mm256_loadu_ps(x + i), a0);
  }
  float acc = hsum(a0);
  for (; i < n; ++i) acc += bf16_to_f32(w[i]) * x[i];
  return acc;
}

FRUGAL_AVX2 float dot_q5_0(const void* row, const void* xv, int64_t n) {
  const Q5_0* w = static_cast<const Q5_0*>(row);
  const ActBlock* a = static_cast<const ActBlock*>(xv);
  __m256 acc = _mm256_setzero_ps();
  float off = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    const float s = h2f(w[b].d) * a[b].d;
    const __m256i q = _mm256_or_si256(unpack_nibbles16(w[b].qs), fifth_bits(w[b].qh));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(s), dot_u8s8(q, load32(a[b].qs)), acc);
    off += s * static_cast<float>(a[b].s);
  }
  return hsum(acc) - 16.0f * off;
}

FRUGAL_AVX2 float dot_q5_1(const void* row, const void* xv, int64_t n) {
  const Q5_1* w = static_cast<const Q5_1*>(row);
  const ActBlock* a = static_cast<const ActBlock*>(xv);
  __m256 acc = _mm256_setzero_ps();
  float off = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    const float s = h2f(w[b].d) * a[b].d;
    const __m256i q = _mm256_or_si256(unpack_nibbles16(w[b].qs), fifth_bits(w[b].qh));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(s), dot_u8s8(q, load32(a[b].qs)), acc);
    off += h2f(w[b].m) * a[b].d * static_cast<float>(a[b].s);
  }
  return hsum(acc) + off;
}

FRUGAL_AVX2 float dot_f32_f32(const float* a, const float* b, int64_t n) { return dot_f32_w(a, b, n); }
FRUGAL_AVX2 void axpy_f32(float s, const float* x, float* y, int64_t n) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += s * x[i];
}

KernelSet make_avx2() {
  KernelSet k;
  fill_scalar_fallbacks(&k);
  k.name = "avx2";
  auto set = [&](WType t, DotFn d) { k.dot[static_cast<int>(t)] = d; };
  set(WType::kF32, dot_f32_w);
  set(WType::kF16, dot_f16_w);
  set(WType::kBF16, dot_bf16_w);
  set(WType::kQ5_0, dot_q5_0);
  set(WType::kQ5_1, dot_q5_1);
  gemm_avx2::g_fill(k);  // Q8_0, Q4_0, Q4_K, Q6_K dots and batched matmuls, quantize_act, swiglu
  k.dot_f32 = dot_f32_f32;
  k.axpy_f32 = axpy_f32;
  return k;
}

}  // namespace

const KernelSet* avx2_kernels() {
  static const KernelSet* k = []() -> const KernelSet* {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
        !__builtin_cpu_supports("f16c"))
      return nullptr;
    static const KernelSet set = make_avx2();
    return &set;
  }();
  return k;
}

}  // namespace frugal::engine::cpu
