#pragma once
// GGML tensor element types as stored in GGUF files: numeric ids, on-disk block
// layouts, and reference (scalar, portable) conversions to and from f32.
//
// Every quantised type stores a row of n values as n / block_size(type) blocks laid
// out back to back; a row must therefore hold a multiple of the block size. The block
// structs below are the exact byte layouts ggml writes (little-endian, no padding),
// so a `const BlockQ4_0*` can point straight into an mmapped GGUF tensor.
//
// The reference routines here are the correctness baseline for the compute layer's
// optimised kernels; they favour clarity over speed.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/error.h"

namespace frugal::engine {

// Numeric ids are part of the GGUF format; never renumber.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  // 4 and 5 (Q4_2, Q4_3) were removed from ggml.
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  // 31..33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) were removed from ggml.
  kTQ1_0 = 34,
  kTQ2_0 = 35,
};

// Values per block for the classic quants and for the K-quants' super-blocks.
inline constexpr int kQK4_0 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK_K = 256;
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales+mins of Q4_K/Q5_K

// IEEE half and bfloat16 are stored as their raw bit patterns.
using Fp16 = uint16_t;
using Bf16 = uint16_t;

// Q8_0: x[i] = d * qs[i].
struct BlockQ8_0 {
  Fp16 d;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Q4_0: x[i] = d * (q[i] - 8), q in [0, 15]. Byte j holds q[j] in its low nibble and
// q[j + 16] in its high nibble (the two halves of the block, not neighbours).
struct BlockQ4_0 {
  Fp16 d;
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// Q5_0: x[i] = d * (q[i] - 16), q in [0, 31]. Low 4 bits as in Q4_0; bit 4 of q[i]
// is bit i of the little-endian 32-bit qh.
struct BlockQ5_0 {
  Fp16 d;
  uint8_t qh[4];
  uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

// Q5_1: x[i] = d * q[i] + m, q in [0, 31]; bit layout as Q5_0.
struct BlockQ5_1 {
  Fp16 d;
  Fp16 m;
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

// Q4_K: 256 values in 8 sub-blocks of 32. Sub-block s has a 6-bit scale sc[s] and a
// 6-bit min mn[s] packed in `scales` (see unpack_q4_k_scale_min); x = d*sc*q - dmin*mn
// with q in [0, 15]. qs is 4 chunks of 32 bytes: chunk c holds sub-block 2c in the
// low nibbles and sub-block 2c+1 in the high nibbles.
struct BlockQ4_K {
  Fp16 d;
  Fp16 dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q6_K: 256 values in 16 sub-blocks of 16 with int8 scales; x = d * scales[s] * (q - 32),
// q in [0, 63]. Each half of 128 values uses 64 bytes of ql (low 4 bits) and 32 bytes
// of qh (high 2 bits): for l in [0, 32), values l, l+32, l+64, l+96 of the half are
//   ql[l] & 0xF | (qh[l] >> 0 & 3) << 4,   ql[l+32] & 0xF | (qh[l] >> 2 & 3) << 4,
//   ql[l] >> 4  | (qh[l] >> 4 & 3) << 4,   ql[l+32] >> 4  | (qh[l] >> 6 & 3) << 4.
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  Fp16 d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// Static description of a type. block_size == 0 marks an id we do not know.
struct GgmlTypeTraits {
  const char* name;
  int block_size;         // values per block (1 for plain scalar types)
  size_t bytes_per_block;
  bool has_reference;     // dequantize_row / quantize_row implemented
};

// Traits for any id; unknown ids get {"unknown", 0, 0, false}.
const GgmlTypeTraits& type_traits(GgmlType type);
// "f32", "q4_K", ...; "unknown" for ids we do not know.
const char* type_name(GgmlType type);
// Parses a numeric id from a file; nullopt for ids not in the enum.
std::optional<GgmlType> type_from_id(uint32_t id);
// Parses "q4_K", "Q8_0", "f16" (case-insensitive).
std::optional<GgmlType> type_from_name(std::string_view name);
int block_size(GgmlType type);
size_t bytes_per_block(GgmlType type);
// Bytes of one row of n values; n must be a multiple of block_size(type).
size_t row_size(GgmlType type, int64_t n);
// True when dequantize_row / quantize_row support the type.
bool has_reference_kernels(GgmlType type);

// Portable conversions (no F16C needed). f32 -> f16/bf16 round to nearest even;
// NaN stays NaN, overflow becomes infinity, f16 subnormals are exact.
float fp16_to_f32(Fp16 h);
Fp16 f32_to_fp16(float f);
float bf16_to_f32(Bf16 h);
Bf16 f32_to_bf16(float f);

// Unpacks the 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block.
void unpack_q4_k_scale_min(int j, const uint8_t* scales, uint8_t* scale, uint8_t* min);

// src holds row_size(type, n) bytes; dst receives n floats. n must be a multiple of
// block_size(type). Errors for types without a reference kernel or a bad n.
Result<void> dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);
// Inverse of dequantize_row: dst receives row_size(type, n) bytes. Reference
// quantisers, not the best-quality ones: Q4_K and Q6_K use a single pass of
// min/max scale fitting (see ggml_types.cpp for the error bounds the tests check).
Result<void> quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

}  // namespace frugal::engine
