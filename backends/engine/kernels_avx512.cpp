// The AVX-512 VNNI kernel set: the AVX2 set with the quantized dots and batched matmuls
// of kernels_gemm.inc recompiled for AVX-512 VL/BW/VNNI (vpdpbusd on 256-bit vectors,
// 32 vector registers for 4x4 tiles). Per-function target pragma, so the library still
// runs on CPUs without AVX-512: avx512_kernels() hands the set out only after cpuid says yes.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backends/engine/kernel_blocks.h"
#include "backends/engine/kernels.h"

namespace frugal::engine::cpu {

namespace {

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")
#endif
#define FRUGAL_GEMM_VNNI 1
#include "backends/engine/kernels_gemm.inc"
#undef FRUGAL_GEMM_VNNI
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

KernelSet make_avx512(const KernelSet& avx2) {
  KernelSet k = avx2;
  k.name = "avx512vnni";
  g_fill(k);
  return k;
}

}  // namespace

const KernelSet* avx512_kernels() {
  static const KernelSet* k = []() -> const KernelSet* {
    const KernelSet* avx2 = avx2_kernels();  // also runs __builtin_cpu_init
    if (avx2 == nullptr || !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vl") ||
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq") ||
        !__builtin_cpu_supports("avx512vnni"))
      return nullptr;
    static const KernelSet set = make_avx512(*avx2);
    return &set;
  }();
  return k;
}

}  // namespace frugal::engine::cpu
